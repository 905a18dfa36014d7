/**
 * Many organisers on one service: 200 created in a loop, a concert and a purchase each, while
 * the connections to organisers' databases are counted in PostgreSQL itself; and a restart
 * (kill -9), after which keys, organisers and their concerts all come back.
 */
import { it, layer } from "@effect/vitest"
import * as HttpServer from "@effect/platform/HttpServer"
import { Effect, Fiber, Redacted, Schedule } from "effect"
import * as net from "node:net"
import Pg from "pg"
import { expect } from "vitest"
import { MainDatabase } from "../../src/sql/Organisers.js"
import { freshDatabaseUrl, organiserDatabase, withClient } from "../fixtures/Database.js"
import { json, raw, TestAppWith } from "../fixtures/Http.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { freePort, serviceResource, startService } from "../fixtures/Service.js"
import { eventually } from "../fixtures/eventually.js"

const adminToken = "an-admin-token-for-the-tests"
const admin = { authorization: `Bearer ${adminToken}` }
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const user = (n: number) => `00000000-0000-0000-0000-${String(n).padStart(12, "0")}`
const body = (value: unknown) => JSON.stringify(value)
const concertBody = (name: string) => body({ name, venue: "Hall", date: "2027-04-04", capacity: 10, status: "ACTIVE" })

/** Connections to the organisers' databases of the main database `url`, as PostgreSQL counts them. */
const organiserConnections = (url: string) =>
  withClient({ connectionString: url }, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE starts_with(datname, current_database() || '_organiser_')"
    )
    return rows[0]!.n
  })

/** Holds a lock on organiser `id`'s concerts table, from outside the service, until `release`. */
const lockConcerts = (id: string) =>
  Effect.gen(function*() {
    const locker = yield* organiserDatabase(id)
    yield* Effect.promise(() => locker.query("BEGIN; LOCK TABLE concerts IN ACCESS EXCLUSIVE MODE"))
    return { release: Effect.promise(() => locker.query("ROLLBACK").then(() => locker.end())) }
  })

const databasesOpen = 4
const poolSize = 2

layer(
  TestAppWith({
    ADMIN_TOKEN: adminToken,
    ORGANISER_DATABASES_OPEN: String(databasesOpen),
    ORGANISER_POOL_SIZE: String(poolSize),
    ORGANISER_IDLE: "2 seconds",
    RENDER_WORKERS: "1"
  }),
  { excludeTestServices: true, timeout: "300 seconds" }
)("200 organisers", (it) => {
  it.effect("each with a concert and a purchase; the connections held stay within the setting, and close when idle", () =>
    Effect.gen(function*() {
      const main = yield* MainDatabase
      const url = Redacted.value(main.url)
      let most = 0
      const sampler = yield* organiserConnections(url).pipe(
        Effect.tap((n) => Effect.sync(() => (most = Math.max(most, n)))),
        Effect.repeat(Schedule.spaced("20 millis")),
        Effect.fork
      )
      const keys: Array<string> = []
      const tickets: Array<string> = []
      for (let i = 0; i < 200; i++) {
        const created = yield* raw("POST", "/api/v1/organisers", body({ name: `Organiser ${i}` }), admin)
        expect(created.status).toBe(201)
        const key = (json(created) as { api_key: string }).api_key
        keys.push(key)
        const concert = yield* raw("POST", "/api/v1/concerts", concertBody(`Concert ${i}`), bearer(key))
        expect(concert.status).toBe(201)
        const concertId = (json(concert) as { id: string }).id
        const ticket = yield* raw("POST", "/api/v1/tickets", body({ concert_id: concertId, user_id: user(i + 1) }))
        expect(ticket.status).toBe(201)
        tickets.push((json(ticket) as { id: string }).id)
      }
      // Every organiser sees its own purchase again, the first ones from databases closed since.
      for (const i of [0, 1, 57, 123, 199]) {
        const listed = json(yield* raw("GET", "/api/v1/tickets", undefined, bearer(keys[i]!))) as Array<{ id: string }>
        expect(listed.map((t) => t.id)).toEqual([tickets[i]])
      }
      yield* Fiber.interrupt(sampler)
      console.log(`organiser connections: at most ${most} seen (bound ${databasesOpen * poolSize})`)
      expect(most).toBeGreaterThan(0)
      expect(most).toBeLessThanOrEqual(databasesOpen * poolSize)
      // Idle, they close.
      yield* eventually(organiserConnections(url), (n) => n === 0, { within: "20 seconds" })
    }), 300_000) // 200 databases created: 79 s alone on a 2-vCPU VM, over 120 s beside the rest of the suite
})

it.scoped("a restart (kill -9): keys, organisers and their concerts all come back", () =>
  Effect.gen(function*() {
    const databaseUrl = yield* freshDatabaseUrl
    const env = { DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken, RENDER_WORKERS: "1" }
    const first = yield* serviceResource(env)
    const call = (port: number, method: string, path: string, sent?: string, headers?: Record<string, string>) =>
      Effect.promise(() => rawRequest(port, method, `/api/v1${path}`, sent, headers))
    const made: Array<{ key: string; concert: string; ticket: string }> = []
    for (const name of ["Before A", "Before B"]) {
      const created = yield* call(first.port, "POST", "/organisers", body({ name }), admin)
      expect(created.status).toBe(201)
      const key = (json(created) as { api_key: string }).api_key
      const concert = (json(yield* call(first.port, "POST", "/concerts", concertBody(name), bearer(key))) as { id: string }).id
      const ticket = yield* call(first.port, "POST", "/tickets", body({ concert_id: concert, user_id: user(1) }))
      expect(ticket.status).toBe(201)
      made.push({ key, concert, ticket: (json(ticket) as { id: string }).id })
    }
    first.process.kill("SIGKILL")
    yield* Effect.promise(() => first.exited)

    const second = yield* Effect.promise(() => startService(env, first.port))
    yield* Effect.addFinalizer(() => Effect.sync(() => second.process.kill("SIGKILL")))
    for (const { concert, key, ticket } of made) {
      const concerts = json(yield* call(second.port, "GET", "/concerts", undefined, bearer(key))) as Array<{ id: string }>
      expect(concerts.map((c) => c.id)).toEqual([concert])
      const listed = json(yield* call(second.port, "GET", "/tickets", undefined, bearer(key))) as Array<{ id: string }>
      expect(listed.map((t) => t.id)).toEqual([ticket])
      // It sells on, and the other's key still sees none of it.
      expect((yield* call(second.port, "POST", "/tickets", body({ concert_id: concert, user_id: user(2) }))).status).toBe(201)
      const other = made.find((m) => m.key !== key)!
      expect((yield* call(second.port, "GET", `/concerts/${concert}`, undefined, bearer(other.key))).status).toBe(404)
    }
    expect((yield* call(second.port, "GET", "/concerts", undefined, bearer(`${made[0]!.key.slice(0, -4)}AAAA`))).status).toBe(401)
    // And new organisers are numbered after the old ones.
    const third = yield* call(second.port, "POST", "/organisers", body({ name: "After" }), admin)
    expect(third.status).toBe(201)
    expect((json(third) as { id: string }).id.slice(0, 8)).toBe("00000003")
  }), { timeout: 120_000 })

layer(
  TestAppWith({ ADMIN_TOKEN: adminToken, ORGANISER_DATABASES_OPEN: "1", ORGANISER_POOL_SIZE: "1", ORGANISER_WAIT: "1 second" }),
  { excludeTestServices: true, timeout: "60 seconds" }
)("organisers' databases all in use", (it) => {
  it.effect("another organiser waits at most ORGANISER_WAIT, then gets a 503 to retry; the default organiser is not held up", () =>
    Effect.gen(function*() {
      const created: Array<{ id: string; api_key: string }> = []
      for (const name of ["Busy", "Waiting"]) {
        const answer = yield* raw("POST", "/api/v1/organisers", body({ name }), admin)
        expect(answer.status).toBe(201)
        created.push(json(answer) as { id: string; api_key: string })
      }
      const [busy, waiting] = created.map((o) => o.api_key) as [string, string]
      expect((yield* raw("POST", "/api/v1/concerts", concertBody("Busy's"), bearer(busy))).status).toBe(201)
      // The busy organiser's one connection is held: a query on its concerts waits on a lock.
      const lock = yield* lockConcerts(created[0]!.id)
      const held = yield* Effect.fork(raw("GET", "/api/v1/concerts", undefined, bearer(busy)))
      yield* Effect.sleep("300 millis")

      const started = Date.now()
      const refused = yield* raw("GET", "/api/v1/concerts", undefined, bearer(waiting))
      const waited = Date.now() - started
      expect(refused.status).toBe(503)
      expect(refused.headers["retry-after"]).toBeDefined()
      expect(waited).toBeGreaterThanOrEqual(900)
      expect(waited).toBeLessThan(5000)
      expect((yield* raw("GET", "/api/v1/concerts")).status).toBe(200)

      yield* lock.release
      expect((yield* Fiber.join(held)).status).toBe(200)
      // Once it is released, the other organiser gets its turn.
      expect((yield* raw("GET", "/api/v1/concerts", undefined, bearer(waiting))).status).toBe(200)
    }))
})

layer(
  TestAppWith({ ADMIN_TOKEN: adminToken, ORGANISER_POOL_SIZE: "1" }),
  { excludeTestServices: true, timeout: "60 seconds" }
)("buyers who go away", (it) => {
  it.effect("a request whose client goes away while it waits for its organiser's one connection gives the connection back", () =>
    Effect.gen(function*() {
      const created = yield* raw("POST", "/api/v1/organisers", body({ name: "Impatient" }), admin)
      const { api_key: key, id } = json(created) as { api_key: string; id: string }
      const concert = yield* raw("POST", "/api/v1/concerts", concertBody("Impatient's"), bearer(key))
      expect(concert.status).toBe(201)
      const concertId = (json(concert) as { id: string }).id
      const lock = yield* lockConcerts(id)
      // The organiser's one connection waits on the lock...
      const held = yield* Effect.fork(raw("GET", "/api/v1/concerts", undefined, bearer(key)))
      yield* Effect.sleep("300 millis")
      // ...while five more requests wait for it, and their clients give up.
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 5 }, () =>
          new Promise<void>((resolve) => {
            const socket = net.connect(port, "127.0.0.1", () => {
              socket.write(`GET /api/v1/concerts/${concertId} HTTP/1.1\r\nhost: localhost\r\n\r\n`)
              setTimeout(() => {
                socket.destroy()
                resolve()
              }, 300)
            })
            socket.on("error", () => resolve())
          })
        ))
      )
      yield* Effect.sleep("300 millis")
      yield* lock.release
      expect((yield* Fiber.join(held)).status).toBe(200)
      // Had any of them kept the connection, the pool of one would have none left.
      for (let i = 0; i < 5; i++) {
        const started = Date.now()
        expect((yield* raw("GET", `/api/v1/concerts/${concertId}`)).status).toBe(200)
        expect(Date.now() - started).toBeLessThan(2000)
      }
    }))
})

it.scopedLive("keys across processes: a new key works everywhere at once; a replaced one stops within 10 s, its successor works within seconds", () =>
  Effect.gen(function*() {
    const databaseUrl = yield* freshDatabaseUrl
    const runnerPort = yield* Effect.promise(() => freePort())
    const runner = yield* serviceResource({
      DATABASE_URL: databaseUrl,
      ADMIN_TOKEN: adminToken,
      CLUSTER_MODE: "runner",
      RUNNER_HOST: "127.0.0.1",
      RUNNER_PORT: String(runnerPort)
    })
    const client = yield* serviceResource({ DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken, CLUSTER_MODE: "client" })
    const call = (port: number, method: string, path: string, sent?: string, headers?: Record<string, string>) =>
      Effect.promise(() => rawRequest(port, method, `/api/v1${path}`, sent, headers))
    const created = json(yield* call(runner.port, "POST", "/organisers", body({ name: "Travelling" }), admin)) as {
      id: string
      api_key: string
    }
    // Made on the runner, it works on the other process at once.
    expect((yield* call(client.port, "GET", "/concerts", undefined, bearer(created.api_key))).status).toBe(200)
    const replaced = json(yield* call(runner.port, "POST", `/organisers/${created.id}/key`, undefined, admin)) as { api_key: string }
    const replacedAt = Date.now()
    expect((yield* call(runner.port, "GET", "/concerts", undefined, bearer(created.api_key))).status).toBe(401)
    expect((yield* call(runner.port, "GET", "/concerts", undefined, bearer(replaced.api_key))).status).toBe(200)
    // Elsewhere the new key works within a couple of seconds, the old one stops within ten.
    const fresh = yield* eventually(call(client.port, "GET", "/concerts", undefined, bearer(replaced.api_key)), (r) => r.status === 200, {
      within: "3 seconds",
      every: "100 millis"
    })
    expect(fresh.status).toBe(200)
    const stale = yield* eventually(call(client.port, "GET", "/concerts", undefined, bearer(created.api_key)), (r) => r.status === 401, {
      within: "12 seconds",
      every: "200 millis"
    })
    expect(stale.status).toBe(401)
    expect(Date.now() - replacedAt).toBeLessThan(11_500)
  }), { timeout: 120_000 })

it.scopedLive("a concert first woken by the hold catch-up after a restart keeps its organiser's database open while it sells", () =>
  Effect.gen(function*() {
    const databaseUrl = yield* freshDatabaseUrl
    const env = { DATABASE_URL: databaseUrl, ADMIN_TOKEN: adminToken, ORGANISER_POOL_SIZE: "1", ORGANISER_IDLE: "1 second" }
    const call = (port: number, method: string, path: string, sent?: string, headers?: Record<string, string>) =>
      Effect.promise(() => rawRequest(port, method, `/api/v1${path}`, sent, headers))
    const first = yield* serviceResource(env)
    const { api_key: key } = json(yield* call(first.port, "POST", "/organisers", body({ name: "Woken" }), admin)) as { api_key: string }
    const concert = (json(yield* call(first.port, "POST", "/concerts", concertBody("Woken's"), bearer(key))) as { id: string }).id
    expect((yield* call(first.port, "PUT", `/concerts/${concert}/sale`, body({ hold_seconds: 1 }), bearer(key))).status).toBe(200)
    expect((yield* call(first.port, "POST", "/reservations", body({ concert_id: concert, user_id: user(1), quantity: 1 }))).status).toBe(201)
    first.process.kill("SIGKILL")
    yield* Effect.promise(() => first.exited)
    // The hold lapses while nobody runs; on start, the catch-up (background work) wakes the concert.
    yield* Effect.sleep("1500 millis")
    const second = yield* Effect.promise(() => startService(env, first.port))
    yield* Effect.addFinalizer(() => Effect.sync(() => second.process.kill("SIGKILL")))
    yield* Effect.sleep("3 seconds")

    // Sales every 300 ms, under the 1 s idle time: the organiser's one connection is never closed.
    const main = new Pg.Client({ connectionString: databaseUrl })
    yield* Effect.promise(() => main.connect())
    yield* Effect.addFinalizer(() => Effect.promise(() => main.end()))
    const database = `${new URL(databaseUrl).pathname.slice(1)}_organiser_1`
    const backends = new Set<number>()
    for (let i = 0; i < 9; i++) {
      expect((yield* call(second.port, "POST", "/tickets", body({ concert_id: concert, user_id: user(i + 2) }))).status).toBe(201)
      const { rows } = yield* Effect.promise(() =>
        main.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1", [database])
      )
      for (const row of rows) backends.add(row.pid)
      yield* Effect.sleep("300 millis")
    }
    expect([...backends]).toHaveLength(1)
  }), { timeout: 120_000 })
