// Worker-thread entry: loads the TypeScript worker through tsx, whatever the parent runs under.
import { tsImport } from "tsx/esm/api"

await tsImport("./RenderWorker.ts", import.meta.url)
