/**
 * A newcomer's first run, where it is hardest: a checkout inside a directory nobody else may
 * enter (as `/root` is, or anything `mktemp -d` makes). As root, PostgreSQL runs as another
 * user, who can reach nothing in there; the service and the test suite's database must start
 * all the same. The checkout is a copy of this one (`node_modules` hard-linked, so it is fast).
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"

const root = path.resolve(import.meta.dirname, "../..")

const privateCheckout = Effect.acquireRelease(
  Effect.promise(async () => {
    await fs.mkdir(path.join(root, ".data"), { recursive: true })
    const parent = await fs.mkdtemp(path.join(root, ".data", "private-"))
    await fs.chmod(parent, 0o700)
    const checkout = path.join(parent, "checkout")
    await fs.mkdir(path.join(checkout, "test"), { recursive: true })
    for (const entry of ["src", "package.json", "tsconfig.json", "test/globalSetup.ts"]) {
      await fs.cp(path.join(root, entry), path.join(checkout, entry), { recursive: true })
    }
    execFileSync("cp", ["-al", path.join(root, "node_modules"), path.join(checkout, "node_modules")])
    return { parent, checkout }
  }),
  ({ checkout, parent }) =>
    Effect.promise(async () => {
      // As root the data lives outside the checkout, behind a link: remove it too.
      const relocated = await fs.realpath(path.join(checkout, ".data", "pg")).catch(() => undefined)
      if (relocated !== undefined && !relocated.startsWith(parent)) {
        await fs.rm(path.dirname(relocated), { recursive: true, force: true })
      }
      await fs.rm(parent, { recursive: true, force: true })
    })
)

it.scopedLive("a checkout in a private (0700) directory starts the service and the test database", () =>
  Effect.gen(function*() {
    const { checkout } = yield* privateCheckout
    const env = { DATABASE_URL: "", DATA_DIR: ".data" }

    const first = yield* serviceResource(env, undefined, checkout)
    const concertId = yield* Effect.promise(() => postConcert(first.port, 10, "First run"))
    first.process.kill("SIGTERM")
    expect(yield* Effect.promise(() => first.exited)).toBe(0)

    // Its data outlives the process.
    const second = yield* serviceResource(env, undefined, checkout)
    const concert = yield* Effect.promise(() => rawRequest(second.port, "GET", `/api/v1/concerts/${concertId}`))
    expect(concert.status).toBe(200)
    second.process.kill("SIGTERM")
    expect(yield* Effect.promise(() => second.exited)).toBe(0)

    // The suite's own database, as `npm test` in that checkout starts it.
    const setup = spawnSync(process.execPath, [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      "const { default: setup } = await import('./test/globalSetup.ts');" +
      "const stop = await setup({ provide: () => undefined }); await stop(); console.log('test database up and down')"
    ], { cwd: checkout, env: { ...process.env, DATABASE_URL: "" }, encoding: "utf8", timeout: 60_000 })
    expect(setup.stderr).not.toContain("did not start")
    expect(setup.stdout).toContain("test database up and down")
    expect(setup.status).toBe(0)
  }), 180_000)
