/**
 * The service as an operator runs it: started, watched, signalled. Each test starts `src/main.ts`
 * in a child process on a database of its own.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as path from "node:path"
import { serviceEnv, serviceNodeArgs } from "../../src/Settings.js"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { freePort, postConcert, serviceResource, spawnService } from "../fixtures/Service.js"
import { eventually } from "../fixtures/eventually.js"

const user = (i: number) => `00000000-0000-0000-0000-${String((i % 5000) + 1).padStart(12, "0")}`

it.scopedLive("a second single-mode process on the same database refuses to start, naming the first", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const first = yield* serviceResource({ DATABASE_URL: url })
    const second = spawnService({ DATABASE_URL: url }, yield* Effect.promise(freePort))
    const code = yield* Effect.promise(() => second.exited)
    expect(code).toBe(1)
    const lastLine = second.output().trim().split("\n").at(-1) ?? ""
    expect(lastLine).toContain("level=FATAL")
    expect(lastLine).toContain(`pid=${first.process.pid}`)
    expect(lastLine).toContain("CLUSTER_MODE=runner")
    // The first one is unharmed.
    const concertId = yield* Effect.promise(() => postConcert(first.port, 1))
    const bought = yield* Effect.promise(() =>
      rawRequest(first.port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(0) }))
    )
    expect(bought.status).toBe(201)
  }), 120_000)

it.scopedLive("runners and a client started at the same moment on a new database all start, and sell", () =>
  Effect.gen(function*() {
    // Each would make the schema's and the cluster's tables; made at once, all but one failed.
    const url = yield* freshDatabaseUrl
    const ports = yield* Effect.promise(() => Promise.all([freePort(), freePort(), freePort()]))
    const [a, b, client] = yield* Effect.all([
      serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "runner", RUNNER_HOST: "127.0.0.1", RUNNER_PORT: String(ports[0]) }),
      serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "runner", RUNNER_HOST: "127.0.0.1", RUNNER_PORT: String(ports[1]) }),
      serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "client" }),
      serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "runner", RUNNER_HOST: "127.0.0.1", RUNNER_PORT: String(ports[2]) })
    ], { concurrency: "unbounded" })
    const concertId = yield* Effect.promise(() => postConcert(a!.port, 10))
    const bought = yield* Effect.promise(() =>
      rawRequest(client!.port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(1) }))
    )
    expect(bought.status).toBe(201)
    // A hold goes the same way (a client owns no concert: through its owner's desk), and so
    // does the refusal of one the seats left cannot cover.
    const held = yield* Effect.promise(() =>
      rawRequest(client!.port, "POST", "/api/v1/reservations", JSON.stringify({ concert_id: concertId, user_id: user(2), quantity: 8 }))
    )
    expect(held.status).toBe(201)
    const short = yield* Effect.promise(() =>
      rawRequest(b!.port, "POST", "/api/v1/reservations", JSON.stringify({ concert_id: concertId, user_id: user(3), quantity: 2 }))
    )
    expect([short.status, short.body]).toEqual([412, JSON.stringify({ error: "only 1 seat is left (asked for 2); ask for 1 or fewer" })])
  }))

/** A counter without labels as a process's `/metrics` reads it. */
const counter = async (port: number, name: string) => {
  const { body } = await rawRequest(port, "GET", "/metrics")
  return Number(new RegExp(`^${name}_total (\\d+)$`, "m").exec(body)?.[1] ?? 0)
}

it.scopedLive("each process sends a concert's orders to the desk of the runner that owns the concert", () =>
  Effect.gen(function*() {
    // Each process draws the cluster's ring itself to pick a concert's desk: drawn wrong, orders
    // would still be sold, passed on through the cluster, and only the desks' counters tell.
    const url = yield* freshDatabaseUrl
    const ports = yield* Effect.promise(() => Promise.all([freePort(), freePort(), freePort()]))
    const runners = yield* Effect.all(
      ports.map((runnerPort) =>
        serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "runner", RUNNER_HOST: "127.0.0.1", RUNNER_PORT: String(runnerPort) })
      ),
      { concurrency: "unbounded" }
    )
    const client = yield* serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "client" })
    const concerts = yield* Effect.promise(() => Promise.all(Array.from({ length: 12 }, () => postConcert(runners[0]!.port, 1000))))
    const desks = () =>
      Promise.all(runners.map(async ({ port }) => [
        await counter(port, "ticketoverflow_desk_orders"),
        await counter(port, "ticketoverflow_desk_orders_passed_on"),
        await counter(port, "ticketoverflow_desk_messages")
      ] as const)).then((counts) =>
        counts.reduce(([taken, passed, messages], [t, p, m]) => [taken + t, passed + p, messages + m], [0, 0, 0])
      )
    let buyer = 0
    // A round: every concert bought once through every process. While the runners share the
    // shards out after starting, a round may pass orders on; once they have, none does.
    const round = Effect.promise(async () => {
      const [takenBefore, passedBefore, messagesBefore] = await desks()
      const statuses = await Promise.all([...runners, client].flatMap(({ port }) =>
        concerts.map((concertId) =>
          rawRequest(port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(buyer++) }))
            .then((answer) => answer.status)
        )
      ))
      const [takenAfter, passedAfter, messagesAfter] = await desks()
      return { statuses, taken: takenAfter - takenBefore, passed: passedAfter - passedBefore, messages: messagesAfter - messagesBefore }
    })
    // Through a desk: the client's twelve orders, and each runner's for the concerts the two
    // others own (12 − those it owns, 24 in all).
    const settled = yield* eventually(round, ({ passed, taken }) => passed === 0 && taken === 36, {
      within: "60 seconds",
      every: "500 millis"
    })
    expect(settled.statuses.every((status) => status === 201)).toBe(true)
    // The desks count the messages their orders came in: some, and no more than the orders.
    expect(settled.messages).toBeGreaterThan(0)
    expect(settled.messages).toBeLessThanOrEqual(settled.taken)
    expect({ passed: settled.passed, taken: settled.taken }).toEqual({ passed: 0, taken: 36 })
  }), 180_000)

it.scopedLive("a runner that cannot listen on its runner port exits 1 before saying it is ready", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const taken = yield* Effect.acquireRelease(
      Effect.async<net.Server>((resume) => {
        const server = net.createServer()
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
    )
    const runnerPort = (taken.address() as net.AddressInfo).port
    const runner = spawnService({
      DATABASE_URL: url,
      CLUSTER_MODE: "runner",
      RUNNER_HOST: "127.0.0.1",
      RUNNER_PORT: String(runnerPort),
      LOG_LEVEL: "info"
    }, yield* Effect.promise(freePort))
    expect(yield* Effect.promise(() => runner.exited)).toBe(1)
    expect(runner.output()).not.toContain("message=ready")
    expect(runner.output()).toContain(`cannot listen on 127.0.0.1:${runnerPort}`)
  }), 120_000)

interface Outcome {
  readonly status?: number
  readonly error?: string
  readonly body?: string
  readonly retryAfter?: string | undefined
}

it.scopedLive("SIGTERM in the middle of a burst: every request on an open connection is answered, none reset", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const service = yield* serviceResource({ DATABASE_URL: url })
    const concertId = yield* Effect.promise(() => postConcert(service.port, 100_000, "Drain"))
    // 64 keep-alive connections, all open before the signal.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
    yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
    const buy = (i: number) =>
      new Promise<Outcome>((resolve) => {
        const body = JSON.stringify({ concert_id: concertId, user_id: user(i) })
        const request = http.request({
          host: "127.0.0.1",
          port: service.port,
          method: "POST",
          path: "/api/v1/tickets",
          agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
        }, (response) => {
          let text = ""
          response.on("data", (chunk: Buffer) => (text += chunk.toString()))
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, body: text, retryAfter: response.headers["retry-after"] }))
        })
        request.on("error", (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }))
        request.end(body)
      })

    const outcomes: Array<Outcome> = []
    let next = 0
    let signalled = false
    const worker = async () => {
      while (next < 3000) {
        const outcome = await buy(next++)
        outcomes.push(outcome)
        // A well-behaved client waits as a 503 asks before its next request.
        if (outcome.retryAfter !== undefined) await new Promise((r) => setTimeout(r, Number(outcome.retryAfter) * 1000))
        // Refused by a closed listener: this client would go to another process now.
        if (outcome.error === "ECONNREFUSED") return
        if (!signalled && outcomes.length >= 400) {
          signalled = true
          service.process.kill("SIGTERM")
        }
      }
    }
    yield* Effect.promise(() => Promise.all(Array.from({ length: 64 }, worker)))
    expect(yield* Effect.promise(() => service.exited)).toBe(0)

    const failed = outcomes.filter((o) => o.error !== undefined && o.error !== "ECONNREFUSED")
    expect(failed).toEqual([])
    const statuses = new Map<number, number>()
    for (const o of outcomes) if (o.status !== undefined) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1)
    expect([...statuses.keys()].every((s) => s === 201 || s === 503)).toBe(true)
    expect(statuses.get(201) ?? 0).toBeGreaterThanOrEqual(400)
    for (const o of outcomes.filter((o) => o.status === 503)) {
      expect(o.retryAfter).toBeDefined()
      expect(typeof (JSON.parse(o.body ?? "{}") as { error?: unknown }).error).toBe("string")
    }

    // Every 201 is in the database.
    const again = yield* serviceResource({ DATABASE_URL: url })
    const listed = yield* Effect.promise(() => rawRequest(again.port, "GET", `/api/v1/tickets?concert_id=${concertId}`))
    expect((JSON.parse(listed.body) as Array<unknown>).length).toBe(statuses.get(201))
  }), 180_000)

it.scopedLive("an operator's log: ready with its URL, shards, requests at debug, sell-outs and cancellations", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const service = yield* serviceResource({ DATABASE_URL: url, LOG_LEVEL: "debug" })
    const soldOut = yield* Effect.promise(() => postConcert(service.port, 2, "Sells out"))
    const cancelled = yield* Effect.promise(() => postConcert(service.port, 5, "Called off"))
    for (let i = 0; i < 3; i++) {
      yield* Effect.promise(() =>
        rawRequest(service.port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: soldOut, user_id: user(i) }))
      )
    }
    const put = yield* Effect.promise(() =>
      rawRequest(service.port, "PUT", `/api/v1/concerts/${cancelled}`, JSON.stringify({ status: "CANCELLED" }))
    )
    expect(put.status).toBe(200)
    // Shards are looked at once a second, apart from serving: the line may come after "ready".
    yield* eventually(Effect.sync(() => service.output().includes("message=\"shards acquired\"")), (seen) => seen, {
      within: "10 seconds"
    })
    service.process.kill("SIGTERM")
    expect(yield* Effect.promise(() => service.exited)).toBe(0)

    // A line per event, its fields in any order.
    const lines = service.output().split("\n")
    const linesWith = (...fields: ReadonlyArray<string>) =>
      lines.filter((line) => fields.every((f) => line.includes(`${f} `) || line.endsWith(f)))
    expect(linesWith("message=ready", `url=http://127.0.0.1:${service.port}/api/v1`)).toHaveLength(1)
    expect(linesWith("message=\"shards acquired\"", "held=300")).toHaveLength(1)
    expect(linesWith("message=\"concert sold out\"", `concertId=${soldOut}`, "capacity=2")).toHaveLength(1)
    expect(linesWith("message=\"concert cancelled\"", `concertId=${cancelled}`)).toHaveLength(1)
    expect(linesWith("message=request", "method=POST", "url=/api/v1/tickets", "status=201")).toHaveLength(2)
    expect(linesWith("message=request", "method=POST", "url=/api/v1/tickets", "status=422")).toHaveLength(1)
    expect(linesWith("message=request", "method=PUT", "status=200")).toHaveLength(1)
    expect(linesWith("message=\"stopping: answering the requests in flight\"")).toHaveLength(1)
  }), 120_000)

/** The Node process serving `port` (Linux): its arguments and its environment. */
const serviceProcess = (port: number) => {
  for (const pid of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
      const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
      if (args.some((arg) => arg.endsWith("dist/main.js")) && env.includes(`PORT=${port}`)) return { args, env }
    } catch {
      // A process that ended meanwhile, or another user's.
    }
  }
  return undefined
}

it.scopedLive("SIGTERM to `npm start`, as a supervisor sends it, stops the service itself", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const port = yield* Effect.promise(freePort)
    // What `npm start` sets itself, not inherited.
    const { MALLOC_MMAP_THRESHOLD_: _, ...inherited } = process.env
    const npm = spawn("npm", ["start"], {
      cwd: path.resolve(import.meta.dirname, "../.."),
      env: { ...inherited, DATABASE_URL: url, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    npm.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    yield* Effect.addFinalizer(() => Effect.sync(() => npm.kill("SIGKILL")))
    yield* eventually(Effect.sync(() => output.includes("message=ready")), (ready) => ready, { within: "60 seconds", every: "100 millis" })
    expect(output).toContain("message=ready")
    // `npm start` runs the service as the benches and `npm run cluster` do: with the same Node
    // settings and environment.
    const running = serviceProcess(port)
    expect(running).toBeDefined()
    for (const arg of serviceNodeArgs) expect(running!.args).toContain(arg)
    for (const [name, value] of Object.entries(serviceEnv)) expect(running!.env).toContain(`${name}=${value}`)

    npm.kill("SIGTERM")
    // The service stops: its port closes and its claim on the database is released, so
    // another single process may take the database.
    const refused = yield* eventually(
      Effect.promise(() => rawRequest(port, "GET", "/api/v1/tickets/health").then(() => false, () => true)),
      (gone) => gone,
      { within: "20 seconds", every: "100 millis" }
    )
    expect(refused).toBe(true)
    const next = yield* serviceResource({ DATABASE_URL: url })
    expect(next.port).toBeGreaterThan(0)
  }), 120_000)

it.scopedLive("a client-mode process serves the API only: the runner renders and prints what it is asked for", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const runnerPort = yield* Effect.promise(freePort)
    const runner = yield* serviceResource({
      DATABASE_URL: url,
      CLUSTER_MODE: "runner",
      RUNNER_HOST: "127.0.0.1",
      RUNNER_PORT: String(runnerPort),
      LOG_LEVEL: "info"
    })
    const client = yield* serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "client", LOG_LEVEL: "info" })
    const call = (method: string, path: string, body?: string) =>
      Effect.promise(() => rawRequest(client.port, method, path, body))

    const concertId = yield* Effect.promise(() => postConcert(client.port, 5, "Through a client"))
    const bought = yield* eventually(
      call("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(0) })),
      (r) => r.status !== 503,
      { within: "30 seconds", every: "250 millis" }
    )
    expect(bought.status).toBe(201)
    const ticketId = (JSON.parse(bought.body) as { id: string }).id
    expect((yield* call("POST", `/api/v1/tickets/${ticketId}/print`)).status).toBe(202)
    const printed = yield* eventually(call("GET", `/api/v1/tickets/${ticketId}/print`), (r) => r.status === 200, {
      within: "30 seconds",
      every: "250 millis"
    })
    expect(printed.status).toBe(200)
    const plan = yield* eventually(call("GET", `/api/v1/concerts/${concertId}/seats`), (r) => r.status === 200, {
      within: "30 seconds",
      every: "250 millis"
    })
    expect(plan.headers["content-type"]).toBe("image/svg+xml")

    expect(runner.output()).toContain("message=\"render workers started\"")
    expect(client.output()).not.toContain("render workers started")
  }), 180_000)
