import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import { spawnSync } from "node:child_process"
import Pg from "pg"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest, postStatus } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"

const post = postStatus

const user = (i: number) => `00000000-0000-0000-0000-${String((i % 5000) + 1).padStart(12, "0")}`

const tally = (statuses: ReadonlyArray<number>) => {
  const counts: Record<number, number> = {}
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

/**
 * Prometheus' own check of the exposition format (`promtool check metrics`, from Debian's
 * `prometheus` package, which `.ci/run` installs when it is missing): what it prints is wrong.
 */
const promtool = (text: string) => {
  const checked = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
  if (checked.error !== undefined) {
    throw new Error(`promtool is needed to check /metrics: apt-get install prometheus (.ci/run does) (${checked.error.message})`)
  }
  return `${checked.stdout}${checked.stderr}`.trim()
}

interface Sample {
  readonly name: string
  readonly labels: Record<string, string>
  readonly value: number
}

/** The samples of a scrape that promtool accepted (our label values hold no quotes or commas). */
const samplesOf = (text: string): ReadonlyArray<Sample> =>
  text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels = Object.fromEntries([...(match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]))
    return { name: match[1]!, labels, value: Number(match[3]) }
  })

const find = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))

const value = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string>) =>
  find(samples, name, labels)[0]?.value

const types = (text: string) => new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))

it.scopedLive("/metrics during a burst parses as Prometheus text, and its counters match the answers and the database", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const service = yield* serviceResource({ DATABASE_URL: url })
    const concertId = yield* Effect.promise(() => postConcert(service.port, 300, "Counted"))
    const held = yield* Effect.promise(() => postConcert(service.port, 60, "Held"))

    // Scrapes every 50 ms while 1,000 purchases and 50 reservations of 2 seats run at once.
    const scrapes: Array<string> = []
    let bursting = true
    const scraping = (async () => {
      while (bursting) {
        const scraped = await rawRequest(service.port, "GET", "/metrics")
        expect(scraped.status).toBe(200)
        expect(scraped.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
        scrapes.push(scraped.body)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    const agent = new http.Agent({ keepAlive: true, maxSockets: 300 })
    const [purchases, reservations] = yield* Effect.promise(() =>
      Promise.all([
        Promise.all(Array.from({ length: 1000 }, (_, i) =>
          post(agent, service.port, "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(i) })))),
        Promise.all(Array.from({ length: 50 }, (_, i) =>
          post(agent, service.port, "/api/v1/reservations", JSON.stringify({ concert_id: held, user_id: user(i), quantity: 2 }))))
      ])
    )
    bursting = false
    yield* Effect.promise(() => scraping)
    agent.destroy()
    expect(tally(purchases)).toEqual({ 201: 300, 422: 700 })
    expect(tally(reservations)).toEqual({ 201: 30, 412: 20 })
    expect(scrapes.length).toBeGreaterThan(1)

    // Every scrape, during the burst too, is valid exposition text (up to 20 of them checked).
    for (const text of scrapes.filter((_, i) => i % Math.ceil(scrapes.length / 20) === 0)) {
      expect(promtool(text)).toBe("")
      expect(types(text).get("ticketoverflow_db_pool_connections")).toBe("gauge")
    }

    // After it (the sampled gauges are at most a second old), the counters are the answers given.
    yield* Effect.sleep("1200 millis")
    const scraped = (yield* Effect.promise(() => rawRequest(service.port, "GET", "/metrics"))).body
    expect(promtool(scraped)).toBe("")
    const families = samplesOf(scraped)
    const client = new Pg.Client({ connectionString: url })
    yield* Effect.promise(() => client.connect())
    const { rows } = yield* Effect.promise(() =>
      client.query<{ n: number }>("SELECT count(*)::int AS n FROM tickets WHERE concert_id = $1", [concertId])
    )
    yield* Effect.promise(() => client.end())
    expect(rows[0]!.n).toBe(300)
    expect(value(families, "ticketoverflow_purchases_total", { concert: concertId, status: "201" })).toBe(rows[0]!.n)
    expect(value(families, "ticketoverflow_purchases_total", { concert: concertId, status: "422" })).toBe(700)
    expect(value(families, "ticketoverflow_purchase_seconds_count", { concert: concertId })).toBe(1000)
    expect(value(families, "ticketoverflow_purchase_seconds_bucket", { concert: concertId, le: "+Inf" })).toBe(1000)
    expect(value(families, "ticketoverflow_reservations_total", { concert: held, status: "201" })).toBe(30)
    expect(value(families, "ticketoverflow_reservations_total", { concert: held, status: "412" })).toBe(20)
    expect(value(families, "ticketoverflow_concert_seats", { concert: concertId, state: "sold" })).toBe(300)
    expect(value(families, "ticketoverflow_concert_seats", { concert: concertId, state: "free" })).toBe(0)
    expect(value(families, "ticketoverflow_concert_seats", { concert: held, state: "held" })).toBe(60)
    expect(value(families, "ticketoverflow_concert_capacity", { concert: held })).toBe(60)
    // Group commit: the 330 winners went in far fewer journal writes.
    const commits = value(families, "ticketoverflow_group_commits_total", {})!
    expect(commits).toBeGreaterThan(0)
    expect(commits).toBeLessThan(330)
    expect(types(scraped).get("ticketoverflow_batch_orders")).toBe("histogram")
    // The express lane takes some of the batches (here plain purchases), never more than all.
    const express = value(families, "ticketoverflow_express_batches_total", {})!
    expect(express).toBeGreaterThan(0)
    expect(express).toBeLessThanOrEqual(value(families, "ticketoverflow_batch_orders_count", {})!)
    for (const name of ["ticketoverflow_print_queue_depth", "ticketoverflow_process_memory_bytes", "ticketoverflow_event_loop_delay_seconds", "ticketoverflow_db_pool_waiting", "ticketoverflow_seating_plan_lag_seconds"]) {
      expect(types(scraped).get(name)).toBe("gauge")
    }
    // A cancelled hold's seats are free again in the figures.
    const listed = JSON.parse((yield* Effect.promise(() => rawRequest(service.port, "GET", `/api/v1/reservations?concert_id=${held}`))).body) as Array<{ id: string }>
    expect((yield* Effect.promise(() => rawRequest(service.port, "DELETE", `/api/v1/reservations/${listed[0]!.id}`))).status).toBe(200)
    yield* Effect.sleep("1200 millis")
    const afterCancel = samplesOf((yield* Effect.promise(() => rawRequest(service.port, "GET", "/metrics"))).body)
    expect(value(afterCancel, "ticketoverflow_concert_seats", { concert: held, state: "held" })).toBe(58)
    expect(value(afterCancel, "ticketoverflow_concert_seats", { concert: held, state: "free" })).toBe(2)

    // Made-up concert ids add no series: all such answers share one label.
    yield* Effect.promise(() =>
      Promise.all(Array.from({ length: 20 }, () =>
        rawRequest(service.port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: crypto.randomUUID(), user_id: user(1) }))))
    )
    const after = samplesOf((yield* Effect.promise(() => rawRequest(service.port, "GET", "/metrics"))).body)
    expect(value(after, "ticketoverflow_purchases_total", { concert: "none", status: "400" })).toBe(20)
    expect(find(after, "ticketoverflow_purchases_total", {}).length).toBe(3)
  }), 180_000)
