import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import Pg from "pg"
import { runnerSessionName } from "../../src/Settings.js"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { freePort, postConcert, type Service, serviceResource } from "../fixtures/Service.js"

/*
 * Several processes on one PostgreSQL: two runners (which own the concerts' shards) and a
 * process that serves HTTP only. Buyers may come in at any of them.
 */

const user = (i: number) => `00000000-0000-0000-0000-${String((i % 5000) + 1).padStart(12, "0")}`

interface Outcome {
  readonly via: number
  readonly concertId: string
  /** When the answer came (epoch milliseconds). */
  readonly at: number
  readonly status?: number
  readonly error?: string
  readonly body?: string
  readonly retryAfter?: string | undefined
  readonly ms: number
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })

/** One purchase, with a client's timeout: none may hang past the purchase deadline and its grace. */
const buy = (via: number, port: number, concertId: string, i: number) =>
  new Promise<Outcome>((resolve) => {
    const started = Date.now()
    const body = JSON.stringify({ concert_id: concertId, user_id: user(i) })
    const request = http.request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/api/v1/tickets",
      agent,
      timeout: 15_000,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
    }, (response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString()))
      response.on("end", () =>
        resolve({
          via,
          concertId,
          at: Date.now(),
          status: response.statusCode ?? 0,
          body: text,
          retryAfter: response.headers["retry-after"],
          ms: Date.now() - started
        }))
    })
    request.on("timeout", () => request.destroy(new Error("TIMEOUT")))
    request.on("error", (error: NodeJS.ErrnoException) =>
      resolve({ via, concertId, at: Date.now(), error: error.code ?? error.message, ms: Date.now() - started }))
    request.end(body)
  })

const cluster = (url: string, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const runner = (port: number) =>
      serviceResource({
        ...env,
        DATABASE_URL: url,
        CLUSTER_MODE: "runner",
        RUNNER_HOST: "127.0.0.1",
        RUNNER_PORT: String(port),
        LOG_LEVEL: "info"
      })
    const runnerPorts = [yield* Effect.promise(freePort), yield* Effect.promise(freePort)]
    const a = yield* runner(runnerPorts[0]!)
    const b = yield* runner(runnerPorts[1]!)
    const client = yield* serviceResource({ ...env, DATABASE_URL: url, CLUSTER_MODE: "client" })
    return { a, b, client, runner, runnerPorts }
  })

/** Until one of two runners has let shards go to the other: both hold some. */
const shardsShared = (a: Service, b: Service) =>
  Effect.promise(async () => {
    const deadline = Date.now() + 30_000
    while (!/shards released/.test(a.output() + b.output())) {
      if (Date.now() > deadline) throw new Error("the runners did not share the shards")
      await new Promise((r) => setTimeout(r, 250))
    }
  })

/** Tickets per concert in the database, read through `service`. */
const ticketsOf = (service: Service, concertId: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const listed = await rawRequest(service.port, "GET", `/api/v1/tickets?concert_id=${concertId}`, undefined, headers)
    return (JSON.parse(listed.body) as Array<{ id: string }>).map((t) => t.id)
  })

const burst = (targets: () => ReadonlyArray<readonly [number, Service]>, concerts: ReadonlyArray<string>, total: number, during: (done: number) => void) =>
  Effect.promise(async () => {
    const outcomes: Array<Outcome> = []
    let next = 0
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < total) {
        const i = next++
        const live = targets()
        const [via, service] = live[i % live.length]!
        const outcome = await buy(via, service.port, concerts[i % concerts.length]!, i)
        outcomes.push(outcome)
        during(outcomes.length)
        if (outcome.retryAfter !== undefined) await new Promise((r) => setTimeout(r, Number(outcome.retryAfter) * 1000))
      }
    }))
    return outcomes
  })

it.scopedLive("kill -9 of a runner mid-burst: nothing acknowledged lost, nothing oversold, sales resume through the survivors", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const { a, b, client, runner, runnerPorts } = yield* cluster(url)
    const concerts = yield* Effect.forEach(
      Array.from({ length: 12 }, (_, i) => i),
      (i) => Effect.promise(() => postConcert(client.port, 150, `Failover ${i}`))
    )
    let killed = false
    let killedAt = 0
    const processes: Array<readonly [number, Service]> = [[0, a], [1, b], [2, client]]
    const outcomes = yield* burst(() => killed ? processes.filter(([via]) => via !== 0) : processes, concerts, 3000, (done) => {
      if (!killed && done >= 600) {
        killed = true
        killedAt = Date.now()
        a.process.kill("SIGKILL")
      }
    })
    expect(killed).toBe(true)

    // What buyers saw: tickets, sold out, or 503 with Retry-After; connections refused only by
    // the killed process, and no request hung.
    const failures = outcomes.filter((o) =>
      !(o.status === 201 || o.status === 422 || (o.status === 503 && o.retryAfter !== undefined) ||
        (o.via === 0 && o.error !== undefined && o.error !== "TIMEOUT"))
    )
    expect(failures).toEqual([])
    expect(Math.max(...outcomes.map((o) => o.ms))).toBeLessThan(15_000)

    // Every acknowledged ticket is in the database; no concert holds more than its capacity.
    const acknowledged = new Set(outcomes.filter((o) => o.status === 201).map((o) => (JSON.parse(o.body!) as { id: string }).id))
    const stored = new Set<string>()
    for (const concertId of concerts) {
      const tickets = yield* ticketsOf(client, concertId)
      expect(tickets.length).toBeLessThanOrEqual(150)
      for (const id of tickets) stored.add(id)
    }
    for (const id of acknowledged) expect(stored.has(id)).toBe(true)

    // After the burst, every concert answers through the survivors at once.
    const resumed = yield* Effect.forEach(concerts, (concertId, i) =>
      Effect.promise(async () => {
        const started = Date.now()
        for (;;) {
          const outcome = await buy(2, client.port, concertId, 4000 + i)
          if (outcome.status === 201 || outcome.status === 422) return Date.now() - started
          await new Promise((r) => setTimeout(r, 200))
        }
      }))
    expect(Math.max(...resumed)).toBeLessThan(2_000)
    const seen = new Map<string, number>()
    for (const o of outcomes) seen.set(String(o.status ?? o.error), (seen.get(String(o.status ?? o.error)) ?? 0) + 1)
    // When each concert sold again: its first ticket answered after the kill (the concerts of
    // the killed runner wait for their new owner; the others never stopped).
    const firstAfter = concerts.flatMap((concertId) => {
      const times = outcomes.filter((o) => o.concertId === concertId && o.status === 201 && o.at > killedAt).map((o) => o.at - killedAt)
      return times.length === 0 ? [] : [Math.min(...times)]
    })
    // Every concert sold again through the survivors within 10 s of the kill.
    expect(firstAfter).toHaveLength(concerts.length)
    expect(Math.max(...firstAfter)).toBeLessThan(10_000)
    console.log(
      `failover: answers ${JSON.stringify(Object.fromEntries(seen))}; every concert with seats left sold again ` +
        `${Math.max(...firstAfter)} ms after the kill (${firstAfter.length} concerts)`
    )

    // The killed runner rejoins and takes shards back; sales go on through every process.
    const back = yield* runner(runnerPorts[0]!)
    const rejoined = yield* Effect.promise(async () => {
      const deadline = Date.now() + 30_000
      while (Date.now() < deadline) {
        if (/shards acquired/.test(back.output())) return true
        await new Promise((r) => setTimeout(r, 250))
      }
      return false
    })
    expect(rejoined).toBe(true)
    const fresh = yield* Effect.promise(() => postConcert(back.port, 1000, "After rejoin"))
    const after = yield* burst(() => [[0, back], [1, b], [2, client]], [fresh], 300, () => {})
    expect(after.filter((o) => o.status !== 201)).toEqual([])
  }), 240_000)

it.scopedLive("a runner that stops answering but keeps its connections (SIGSTOP) is fenced: its concerts sell again through the others, and it gives them up when it comes back", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const { a, b, client, runnerPorts } = yield* cluster(url, { ADMIN_TOKEN: "fencing-admin", ORGANISER_IDLE: "10 minutes" })
    yield* shardsShared(a, b)
    // The concerts of an organiser with a database of its own (on the same server), where the
    // runners write them.
    const organiser = yield* Effect.promise(() =>
      rawRequest(client.port, "POST", "/api/v1/organisers", JSON.stringify({ name: "Frozen Live" }), { authorization: "Bearer fencing-admin" })
    )
    expect(organiser.status).toBe(201)
    const key = { authorization: `Bearer ${(JSON.parse(organiser.body) as { api_key: string }).api_key}` }
    const concerts = yield* Effect.forEach(
      Array.from({ length: 12 }, (_, i) => i),
      (i) => Effect.promise(() => postConcert(client.port, 150, `Frozen ${i}`, key))
    )
    const db = new Pg.Client({ connectionString: url })
    yield* Effect.acquireRelease(Effect.promise(() => db.connect()), () => Effect.promise(() => db.end()))
    const organiserDatabase = (yield* Effect.promise(() =>
      db.query<{ database_name: string }>("SELECT database_name FROM organisers")
    )).rows[0]?.database_name
    /** The frozen runner's sessions, in the main database and in the organiser's. */
    const sessionsOfA = Effect.promise(async () => {
      const { rows } = await db.query<{ datname: string; n: number }>(
        "SELECT datname, count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 GROUP BY datname",
        [runnerSessionName(`127.0.0.1:${runnerPorts[0]}`)]
      )
      return Object.fromEntries(rows.map((row) => [row.datname === organiserDatabase ? "organiser" : "main", row.n]))
    })
    const acknowledged: Array<string> = []
    /** Buys through `port` until a ticket comes, or `within` ms have passed (then -1). */
    const sellsWithin = (via: number, port: number, concertId: string, i: number, within: number, from = Date.now()) =>
      Effect.promise(async () => {
        for (;;) {
          const outcome = await buy(via, port, concertId, i)
          if (outcome.status === 201) {
            acknowledged.push((JSON.parse(outcome.body!) as { id: string }).id)
            return Date.now() - from
          }
          if (Date.now() - from > within) return -1
          await new Promise((r) => setTimeout(r, 250))
        }
      })
    // Every concert sold once, so each runs at its owner, half of them at the runner to be frozen.
    yield* Effect.forEach(concerts, (concertId, i) => sellsWithin(2, client.port, concertId, i, 20_000), { concurrency: "unbounded" })
    // It writes its concerts in the organiser's database through sessions of its own there.
    expect((yield* sessionsOfA).organiser).toBeGreaterThan(0)

    // Frozen, its sockets stay open: the database keeps its sessions, and with them its shard
    // locks, unless the others end them.
    yield* Effect.addFinalizer(() => Effect.sync(() => a.process.kill("SIGCONT")))
    const stoppedAt = Date.now()
    a.process.kill("SIGSTOP")
    const resumed = yield* Effect.forEach(
      concerts,
      (concertId, i) => sellsWithin(2, client.port, concertId, 100 + i, 40_000, stoppedAt),
      { concurrency: "unbounded" }
    )
    console.log(`fencing: every concert sold again ${Math.max(...resumed)} ms after its runner froze`)
    expect(resumed.filter((ms) => ms < 0)).toEqual([])
    expect(b.output()).toMatch(/ended the database sessions of a runner that stopped answering/)
    // Every session of it ended, the organiser's database's too: none left holding rows.
    expect(yield* sessionsOfA).toEqual({})

    // Back, it finds its locks gone and lets its concerts go; buyers coming in at any process,
    // itself included, are sold to.
    a.process.kill("SIGCONT")
    const after = yield* Effect.forEach(
      concerts,
      (concertId, i) =>
        Effect.forEach([[0, a], [1, b], [2, client]] as const, ([via, service]) =>
          sellsWithin(via, service.port, concertId, 200 + 3 * i + via, 30_000)),
      { concurrency: "unbounded" }
    )
    expect(after.flat().filter((ms) => ms < 0)).toEqual([])
    // Its own look for frozen runners lost its session too: that is no failure to report.
    expect(a.output()).not.toMatch(/could not end the sessions/)

    // Nothing acknowledged lost, nothing oversold.
    const stored = new Set<string>()
    for (const concertId of concerts) {
      const tickets = yield* ticketsOf(client, concertId, key)
      expect(tickets.length).toBeLessThanOrEqual(150)
      for (const id of tickets) stored.add(id)
    }
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([])
  }), 240_000)

it.scopedLive("SIGTERM of a runner mid-burst: no failed request at all", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const { a, b, client } = yield* cluster(url)
    const concerts = yield* Effect.forEach(
      Array.from({ length: 12 }, (_, i) => i),
      (i) => Effect.promise(() => postConcert(client.port, 1000, `Drain ${i}`))
    )
    let stopped = false
    const outcomes = yield* burst(() => [[1, b], [2, client]], concerts, 3000, (done) => {
      if (!stopped && done >= 600) {
        stopped = true
        a.process.kill("SIGTERM")
      }
    })
    expect(yield* Effect.promise(() => a.exited)).toBe(0)
    const failures = outcomes.filter((o) => o.status !== 201)
    expect(failures).toEqual([])
  }), 240_000)

it.scopedLive("each concert's seating plan is drawn by the runner that owns it, and by no other", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const runner = (port: number) =>
      serviceResource({ DATABASE_URL: url, CLUSTER_MODE: "runner", RUNNER_HOST: "127.0.0.1", RUNNER_PORT: String(port), LOG_LEVEL: "debug" })
    const a = yield* runner(yield* Effect.promise(freePort))
    const b = yield* runner(yield* Effect.promise(freePort))
    // Both hold shards before the concerts come.
    yield* shardsShared(a, b)
    const concerts = yield* Effect.forEach(
      Array.from({ length: 16 }, (_, i) => i),
      (i) => Effect.promise(() => postConcert(i % 2 === 0 ? a.port : b.port, 50, `Owned ${i}`))
    )
    yield* Effect.forEach(concerts, (concertId) =>
      Effect.promise(async () => {
        for (;;) {
          if ((await rawRequest(a.port, "GET", `/api/v1/concerts/${concertId}/seats`)).status === 200) return
          await new Promise((r) => setTimeout(r, 200))
        }
      }))
    // Three rounds of sales: each makes every plan stale again, for whichever runner sweeps first.
    for (let round = 0; round < 3; round++) {
      yield* Effect.forEach(concerts, (concertId, i) =>
        Effect.promise(() =>
          rawRequest(i % 2 === 0 ? b.port : a.port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(round) }))
        ))
      yield* Effect.sleep("2500 millis")
    }
    const drawnBy = (service: Service, concertId: string) =>
      service.output().split("\n").some((line) => line.includes("seating plan rendered") && line.includes(concertId))
    const owners = concerts.map((concertId) => [drawnBy(a, concertId), drawnBy(b, concertId)] as const)
    // Every plan drawn, each by exactly one runner, and both runners drew some.
    expect(owners.every(([byA, byB]) => byA !== byB)).toBe(true)
    expect(owners.some(([byA]) => byA)).toBe(true)
    expect(owners.some(([, byB]) => byB)).toBe(true)
  }), 120_000)

it.scopedLive("holds of a runner that dies expire at the runner that takes its concerts over", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const { a, b, client } = yield* cluster(url)
    yield* shardsShared(a, b)
    // Enough concerts that both runners own some; each with one hold of 6 s.
    const holds = yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) =>
      Effect.promise(async () => {
        const concertId = await postConcert(client.port, 5, `Held ${i}`)
        await rawRequest(client.port, "PUT", `/api/v1/concerts/${concertId}/sale`, JSON.stringify({ hold_seconds: 6 }))
        const held = await rawRequest(client.port, "POST", "/api/v1/reservations", JSON.stringify({ concert_id: concertId, user_id: user(i), quantity: 2 }))
        return (JSON.parse(held.body) as { id: string }).id
      }))
    a.process.kill("SIGKILL")
    // Nobody touches the concerts again: only their wake-ups can expire the holds.
    const statuses = yield* Effect.promise(async () => {
      const deadline = Date.now() + 25_000
      for (;;) {
        const read = await Promise.all(holds.map(async (id) =>
          (JSON.parse((await rawRequest(client.port, "GET", `/api/v1/reservations/${id}`)).body) as { status: string }).status
        ))
        if (read.every((s) => s === "EXPIRED") || Date.now() > deadline) return read
        await new Promise((r) => setTimeout(r, 500))
      }
    })
    expect(statuses).toEqual(holds.map(() => "EXPIRED"))
  }), 120_000)
