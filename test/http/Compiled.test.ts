import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { eventually } from "../fixtures/eventually.js"
import { freePort, postConcert } from "../fixtures/Service.js"
import { serviceEnv, serviceNodeArgs } from "../../src/Settings.js"

const root = path.resolve(import.meta.dirname, "../..")

/**
 * `npm start` runs the JavaScript `npm run build` compiles into `dist/`, not the sources, and
 * hands messages to its own entities without encoding them (the other tests encode them). It
 * listens with a deep accept queue. With
 * its Node settings, the render thread gets V8's default young generation, not the main
 * thread's 2 x 64 MB (each thread's heap limit, which includes it, printed by a preload).
 */
it.scopedLive("the compiled service (dist/), as npm start runs it, sells, holds, refuses, renders, serves the dashboard and stops", () =>
  Effect.gen(function*() {
    execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" })
    const url = yield* freshDatabaseUrl
    const port = yield* Effect.promise(() => freePort())
    const child = spawn(process.execPath, [
      ...serviceNodeArgs,
      "--import",
      path.join(root, "test/fixtures/heapLimit.mjs"),
      "dist/main.js"
    ], {
      cwd: root,
      env: {
        ...serviceEnv,
        ...process.env,
        DATABASE_URL: url,
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "warn",
        CLUSTER_SIMULATE_SERIALIZATION: "false"
      },
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

    // A thousand buyers connecting at the same moment are all let in, even while the service
    // is busy: stopped, it accepts nothing, and the kernel completes the connections its accept
    // queue has room for (Node's default queue, 511, would leave the rest retrying for seconds).
    const somaxconn = Number(fs.readFileSync("/proc/sys/net/core/somaxconn", "utf8"))
    child.kill("SIGSTOP")
    const sockets = Array.from({ length: 1000 }, () => net.connect(port, "127.0.0.1"))
    let connected = 0
    for (const socket of sockets) {
      socket.once("connect", () => connected++)
      socket.on("error", () => {})
    }
    yield* Effect.sleep("1 second")
    child.kill("SIGCONT")
    for (const socket of sockets) socket.destroy()
    expect(connected).toBe(Math.min(1000, somaxconn + 1))
    const concertId = yield* Effect.promise(() => postConcert(port, 3, "Compiled"))
    const order = (path: string, body: Record<string, unknown>) =>
      Effect.promise(() =>
        rawRequest(port, "POST", path, JSON.stringify({ concert_id: concertId, user_id: "00000000-0000-0000-0000-000000000001", ...body }))
      )
    const bought = yield* order("/api/v1/tickets", {})
    expect(bought.status).toBe(201)
    expect(JSON.parse(bought.body)).toMatchObject({ concert: { id: concertId }, print_status: "NOT_PRINTED" })
    const held = yield* order("/api/v1/reservations", { quantity: 2 })
    expect(held.status).toBe(201)
    const reservation = JSON.parse(held.body) as { id: string; status: string; seats: Array<number> }
    expect(reservation).toMatchObject({ status: "HELD", seats: [2, 3] })
    expect((yield* order("/api/v1/reservations", { quantity: 1 })).status).toBe(412)
    expect((yield* order("/api/v1/tickets", {})).status).toBe(422)
    const cancelled = yield* Effect.promise(() => rawRequest(port, "DELETE", `/api/v1/reservations/${reservation.id}`))
    expect(JSON.parse(cancelled.body)).toMatchObject({ status: "CANCELLED" })
    const again = yield* eventually(order("/api/v1/tickets", {}), (r) => r.status === 201, { within: "5 seconds", every: "300 millis" })
    expect(again.status).toBe(201)
    // The seating plan is drawn by the render worker, which is compiled too.
    const plan = yield* eventually(
      Effect.promise(() => rawRequest(port, "GET", `/api/v1/concerts/${concertId}/seats`)),
      (response) => response.status === 200,
      { within: "20 seconds", every: "200 millis" }
    )
    expect(plan.status).toBe(200)
    expect(plan.headers["content-type"]).toBe("image/svg+xml")
    const limit = (thread: string) => Number(new RegExp(`heap limit ${thread} (\\d+) MB`).exec(output)?.[1])
    // 3 x (64 - 16) MB less young generation for the render thread.
    expect(limit("main") - limit("worker"), output).toBe(144)
    const dashboard = yield* Effect.promise(() => rawRequest(port, "GET", "/dashboard"))
    expect(dashboard.status).toBe(200)
    expect(dashboard.body).toContain("TicketOverflow")
    expect((yield* Effect.promise(() => rawRequest(port, "GET", "/dashboard/uPlot.iife.min.js"))).status).toBe(200)

    child.kill("SIGTERM")
    expect(yield* Effect.promise(() => exited)).toBe(0)
  }), 180_000)
