import { expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { startEmbeddedPostgres } from "../../src/sql/EmbeddedPostgres.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"
import { eventually } from "../fixtures/eventually.js"

/** A PostgreSQL of this test's own, so it can be stopped under the running service. */
const ownDatabase = Effect.acquireRelease(
  Effect.promise(async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-down-"))
    return { dataDir, server: await startEmbeddedPostgres({ dataDir, settings: { fsync: "off" } }) }
  }),
  ({ dataDir, server }) => Effect.promise(() => server.stop().then(() => fs.rm(dataDir, { recursive: true, force: true })))
)


/** The service on this test's own database (a small pool, purchases cut off at 2 s), and a concert of 100. */
const sellingOn = (db: Effect.Effect.Success<typeof ownDatabase>, env: Record<string, string>, name: string) =>
  Effect.gen(function*() {
    const service = yield* serviceResource({ DATABASE_URL: db.server.url, DATABASE_POOL_SIZE: "4", PURCHASE_TIMEOUT: "2 seconds", ...env })
    return { service, concertId: yield* Effect.promise(() => postConcert(service.port, 100, name)) }
  })

it.scopedLive("while the database is down every endpoint answers 503 with Retry-After, never 500, and recovers", () =>
  Effect.gen(function*() {
    const db = yield* ownDatabase
    const service = yield* serviceResource({ DATABASE_URL: db.server.url, DATABASE_POOL_SIZE: "4" })
    const call = (method: string, url: string, body?: string) =>
      Effect.promise(() => rawRequest(service.port, method, url, body))
    const created = yield* call("POST", "/api/v1/concerts", JSON.stringify({ name: "N", venue: "V", date: "2027-01-01", capacity: 5, status: "ACTIVE" }))
    const concertId = (JSON.parse(created.body) as { id: string }).id
    const purchase = JSON.stringify({ concert_id: concertId, user_id: "00000000-0000-0000-0000-000000000001" })
    expect((yield* call("POST", "/api/v1/tickets", purchase)).status).toBe(201)

    yield* Effect.promise(() => db.server.stop())
    const requests: ReadonlyArray<readonly [string, string, string?]> = [
      ["GET", "/api/v1/concerts/health"],
      ["GET", "/api/v1/tickets/health"],
      ["GET", "/api/v1/concerts"],
      ["GET", `/api/v1/concerts/${concertId}`],
      ["GET", `/api/v1/tickets?concert_id=${concertId}`],
      ["POST", "/api/v1/concerts", created.body.replace(/"id":"[^"]+",/, "").replace(/"status":"[A-Z_]+"/, "\"status\":\"ACTIVE\"")],
      ["PUT", `/api/v1/concerts/${concertId}`, JSON.stringify({ name: "M" })],
      ["POST", "/api/v1/tickets", purchase]
    ]
    for (const [method, url, body] of requests) {
      const response = yield* call(method, url, body)
      expect({ method, url, status: response.status }).toEqual({ method, url, status: 503 })
      expect(response.headers["retry-after"]).toBeDefined()
      expect(typeof (JSON.parse(response.body) as { error: unknown }).error).toBe("string")
    }

    // Back on the same port with the same data: the service reconnects by itself.
    const again = yield* Effect.acquireRelease(
      Effect.promise(() => startEmbeddedPostgres({ dataDir: db.dataDir, port: db.server.port, settings: { fsync: "off" } })),
      (server) => Effect.promise(() => server.stop())
    )
    expect(again.port).toBe(db.server.port)
    const healthy = yield* eventually(call("GET", "/api/v1/tickets/health"), (r) => r.status === 200, {
      within: "20 seconds",
      every: "250 millis"
    })
    expect(healthy.status).toBe(200)
    expect((yield* call("POST", "/api/v1/tickets", purchase)).status).toBe(201)
    const tickets = JSON.parse((yield* call("GET", `/api/v1/tickets?concert_id=${concertId}`)).body) as Array<unknown>
    expect(tickets).toHaveLength(2)
  }), 120_000)

it.scopedLive("a purchase during an outage is answered 503 within PURCHASE_TIMEOUT and never written afterwards", () =>
  Effect.gen(function*() {
    const db = yield* ownDatabase
    const { concertId, service } = yield* sellingOn(db, { LOG_LEVEL: "info" }, "Outage")
    const buy = (i: number) =>
      Effect.promise(async () => {
        const started = Date.now()
        const response = await rawRequest(service.port, "POST", "/api/v1/tickets", JSON.stringify({
          concert_id: concertId,
          user_id: `00000000-0000-0000-0000-${String(i + 1).padStart(12, "0")}`
        }))
        return { response, millis: Date.now() - started }
      })
    expect((yield* buy(0)).response.status).toBe(201)

    yield* Effect.promise(() => db.server.stop())
    // At once (the journal write fails), and after the cluster has given up its shards for want
    // of its lock storage (about 20 s): then a message waits for the database to come back.
    const early = yield* Effect.all(Array.from({ length: 5 }, (_, i) => buy(1 + i)), { concurrency: "unbounded" })
    yield* Effect.sleep("24 seconds")
    const late = yield* Effect.all(Array.from({ length: 5 }, (_, i) => buy(6 + i)), { concurrency: "unbounded" })
    for (const { millis, response } of [...early, ...late]) {
      expect(response.status).toBe(503)
      expect(response.headers["retry-after"]).toBeDefined()
      expect(typeof (JSON.parse(response.body) as { error: unknown }).error).toBe("string")
      // The timeout, the second an answer may take to travel back, and a margin for a busy machine.
      expect(millis).toBeLessThan(2000 + 1000 + 2500)
    }

    yield* Effect.acquireRelease(
      Effect.promise(() => startEmbeddedPostgres({ dataDir: db.dataDir, port: db.server.port, settings: { fsync: "off" } })),
      (server) => Effect.promise(() => server.stop())
    )
    const sold = yield* eventually(buy(20), ({ response }) => response.status === 201, { within: "30 seconds", every: "500 millis" })
    expect(sold.response.status).toBe(201)
    // Whatever was queued has had its chance to be written by now: nothing answered 503 was.
    yield* Effect.sleep("3 seconds")
    const listed = yield* Effect.promise(() => rawRequest(service.port, "GET", `/api/v1/tickets?concert_id=${concertId}`))
    expect((JSON.parse(listed.body) as Array<{ user: { id: string } }>).map((t) => t.user.id).sort()).toEqual([
      "00000000-0000-0000-0000-000000000001",
      "00000000-0000-0000-0000-000000000021"
    ])

    // The outage in the log: one line when it began, one when it ended, no trace every second.
    const lines = service.output().split("\n")
    expect(lines.filter((line) => line.includes("message=\"database lost\""))).toHaveLength(1)
    expect(lines.filter((line) => line.includes("message=\"database back\""))).toHaveLength(1)
    const noisy = new Map<string, number>()
    for (const line of lines.filter((l) => /level=(WARN|ERROR)/.test(l))) {
      const message = /message=("[^"]*"|\S+)/.exec(line)?.[1] ?? line
      noisy.set(message, (noisy.get(message) ?? 0) + 1)
    }
    expect(Math.max(0, ...noisy.values())).toBeLessThanOrEqual(2)
  }), 120_000)

/** The database's processes (its postmaster and every backend), read from its data directory. */
const databaseProcesses = async (databaseDir: string): Promise<Array<number>> => {
  const postmaster = Number((await fs.readFile(path.join(databaseDir, "postmaster.pid"), "utf8")).split("\n")[0])
  const children: Array<number> = []
  for (const entry of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await fs.readFile(`/proc/${entry}/stat`, "utf8").catch(() => "")
    // pid (comm) state ppid …: the name may hold spaces, so read after its closing parenthesis.
    if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster) children.push(Number(entry))
  }
  return [postmaster, ...children]
}

/** A backend may have ended meanwhile (its client gone): nothing to stop or wake then. */
const signal = (pid: number, name: NodeJS.Signals) => {
  try {
    process.kill(pid, name)
  } catch {
    // ESRCH
  }
}

it.scopedLive("while the database stops answering (its connections open, nothing answered) no read or repeatable write hangs: 503 by the deadline", () =>
  Effect.gen(function*() {
    const db = yield* ownDatabase
    const { concertId, service } = yield* sellingOn(db, { REQUEST_TIMEOUT: "3 seconds" }, "Stalled")
    const bought = yield* Effect.promise(() =>
      rawRequest(service.port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: "00000000-0000-0000-0000-000000000001" }))
    )
    const ticketId = (JSON.parse(bought.body) as { id: string }).id

    // Stopped, not killed: the connections stay open and nothing comes back on them.
    const stopped = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const pids = await databaseProcesses(db.server.databaseDir)
        for (const pid of pids) signal(pid, "SIGSTOP")
        return pids
      }),
      (pids) => Effect.sync(() => pids.forEach((pid) => signal(pid, "SIGCONT")))
    )
    expect(stopped.length).toBeGreaterThan(1)
    const requests: ReadonlyArray<readonly [string, string, string?]> = [
      ["GET", "/api/v1/concerts"],
      ["GET", `/api/v1/concerts/${concertId}`],
      ["GET", `/api/v1/concerts/${concertId}/seats`],
      ["GET", `/api/v1/tickets?concert_id=${concertId}`],
      ["GET", `/api/v1/tickets/${ticketId}`],
      ["POST", `/api/v1/tickets/${ticketId}/print`],
      ["PUT", `/api/v1/concerts/${concertId}`, JSON.stringify({ name: "Renamed" })],
      ["GET", `/API/V1//concerts/${concertId}/`],
      ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: "00000000-0000-0000-0000-000000000002" })]
    ]
    // What creates is not cut off: a 503 ("retry") would be false if it completed afterwards.
    const creating = yield* Effect.fork(Effect.promise(async () => {
      const started = Date.now()
      const response = await rawRequest(service.port, "POST", "/api/v1/concerts", JSON.stringify({ name: "N", venue: "V", date: "2027-01-01", capacity: 5, status: "ACTIVE" }))
      return { status: response.status, millis: Date.now() - started }
    }))
    const answers = yield* Effect.all(
      requests.map(([method, url, body]) =>
        Effect.promise(async () => {
          const started = Date.now()
          const response = await rawRequest(service.port, method, url, body)
          return { request: `${method} ${url}`, status: response.status, response, millis: Date.now() - started }
        })
      ),
      { concurrency: "unbounded" }
    )
    for (const { millis, request, response, status } of answers) {
      expect({ request, status }).toEqual({ request, status: 503 })
      expect(response.headers["retry-after"]).toBeDefined()
      expect(typeof (JSON.parse(response.body) as { error: unknown }).error).toBe("string")
      // The deadline, and a margin for a busy machine.
      expect({ request, late: millis > 3000 + 2500 }).toEqual({ request, late: false })
    }

    // Running again: the service answers as before, by itself.
    for (const pid of stopped) signal(pid, "SIGCONT")
    const again = yield* eventually(
      Effect.promise(() => rawRequest(service.port, "GET", `/api/v1/tickets/${ticketId}`)),
      (response) => response.status === 200,
      { within: "20 seconds", every: "250 millis" }
    )
    expect(again.status).toBe(200)
    const created = yield* Fiber.join(creating)
    expect(created.status).toBe(201)
    expect(created.millis).toBeGreaterThan(3000)
  }), 120_000)
