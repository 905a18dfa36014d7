import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as path from "node:path"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { eventually } from "../fixtures/eventually.js"
import { freePort, postConcert } from "../fixtures/Service.js"

const root = path.resolve(import.meta.dirname, "../..")

/** `npm start` runs the JavaScript `npm run build` compiles into `dist/`, not the sources. */
it.scopedLive("the compiled service (dist/) starts, sells, renders in its worker, serves the dashboard and stops on SIGTERM", () =>
  Effect.gen(function*() {
    execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" })
    const url = yield* freshDatabaseUrl
    const port = yield* Effect.promise(() => freePort())
    const child = spawn(process.execPath, ["--max-semi-space-size=64", "dist/main.js"], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: url, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))

    const health = yield* eventually(
      Effect.promise(() => rawRequest(port, "GET", "/api/v1/tickets/health").then((r) => r.status, () => 0)),
      (status) => status === 200,
      { within: "60 seconds", every: "200 millis" }
    )
    expect(health, output).toBe(200)
    const concertId = yield* Effect.promise(() => postConcert(port, 10, "Compiled"))
    const bought = yield* Effect.promise(() =>
      rawRequest(port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: "00000000-0000-0000-0000-000000000001" }))
    )
    expect(bought.status).toBe(201)
    // The seating plan is drawn by the render worker, which is compiled too.
    const plan = yield* eventually(
      Effect.promise(() => rawRequest(port, "GET", `/api/v1/concerts/${concertId}/seats`)),
      (response) => response.status === 200,
      { within: "20 seconds", every: "200 millis" }
    )
    expect(plan.status).toBe(200)
    expect(plan.headers["content-type"]).toBe("image/svg+xml")
    const dashboard = yield* Effect.promise(() => rawRequest(port, "GET", "/dashboard"))
    expect(dashboard.status).toBe(200)
    expect(dashboard.body).toContain("TicketOverflow")
    expect((yield* Effect.promise(() => rawRequest(port, "GET", "/dashboard/uPlot.iife.min.js"))).status).toBe(200)

    child.kill("SIGTERM")
    expect(yield* Effect.promise(() => exited)).toBe(0)
  }), 180_000)
