// `npm run build`: the service as `npm start` runs it, in `dist/`. Each entry (the service,
// the cluster launcher, the render worker thread) is one ES module holding only the code it
// reaches, with whitespace and comments dropped. V8 keeps the text of every module it loads;
// a module per source file of every package, comments and all, was a third of the idle process.
// Identifiers are not minified, so stack traces read much as the sources (names that clash
// across modules get a number); the linked `.map` files map them back
// (`NODE_OPTIONS=--enable-source-maps`). Not `keepNames`: it renames every function as it is
// created, closures included, which cost purchases measurably. Type checking is `npm run typecheck`.
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import { bundleOptions } from "./bundle.mjs"

fs.rmSync("dist", { recursive: true, force: true })
await esbuild.build({
  ...bundleOptions,
  entryPoints: ["src/main.ts", "src/cluster.ts", "src/workers/RenderWorker.ts"],
  outbase: "src",
  outdir: "dist"
})
fs.cpSync("src/http/dashboard", "dist/dashboard", { recursive: true })
