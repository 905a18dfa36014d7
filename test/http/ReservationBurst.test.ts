import { HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import { eventually } from "../fixtures/eventually.js"
import { json, raw, TestApp } from "../fixtures/Http.js"

const post = (agent: http.Agent, port: number, path: string, body: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path, agent, headers: { "content-type": "application/json" } },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const user = (i: number) => `00000000-0000-0000-0000-${String((i % 5000) + 1).padStart(12, "0")}`

layer(TestApp, { excludeTestServices: true, timeout: "120 seconds" })("reservation burst", (it) => {
  it.effect("3,000 concurrent reservations of 1-10 seats on 500: holds fill it exactly, the rest 412; all 500 sellable after expiry", () =>
    Effect.gen(function*() {
      const created = yield* raw("POST", "/api/v1/concerts", JSON.stringify({
        name: "Pre-sale",
        venue: "Arena",
        date: "2027-02-02",
        capacity: 500,
        status: "ACTIVE"
      }))
      const concertId = (json(created) as { id: string }).id
      // Held long enough to outlast the burst (1-2 s alone, 10 s once beside the whole suite on
      // two cores): a seat reused after its hold lapsed is not a double booking.
      const holdSeconds = 30
      yield* raw("PUT", `/api/v1/concerts/${concertId}/sale`, JSON.stringify({ hold_seconds: holdSeconds }))
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const agent = new http.Agent({ keepAlive: true, maxSockets: 500 })
      const quantities = Array.from({ length: 3000 }, (_, i) => (i * 7919 % 10) + 1)
      const sql = yield* SqlClient.SqlClient
      const [before] = yield* sql<{ commits: string }>`
        SELECT xact_commit::text AS commits FROM pg_stat_database WHERE datname = current_database()`
      const started = Date.now()
      const answers = yield* Effect.promise(() =>
        Promise.all(quantities.map((quantity, i) =>
          post(agent, port, "/api/v1/reservations", JSON.stringify({ concert_id: concertId, user_id: user(i), quantity }))
        ))
      )
      const [after] = yield* sql<{ commits: string }>`
        SELECT xact_commit::text AS commits FROM pg_stat_database WHERE datname = current_database()`
      const [row] = yield* sql<{ held: number }>`SELECT count(*)::int AS held FROM held_seats WHERE concert_id = ${concertId}`
      // Otherwise the first holds may have lapsed and their seats been held again (or released
      // before the count): what follows would not hold, and not for a double booking.
      expect(Date.now() - started, "the burst outlasted the holds").toBeLessThan(holdSeconds * 1000)
      const histogram: Record<number, number> = {}
      for (const answer of answers) histogram[answer.status] = (histogram[answer.status] ?? 0) + 1
      expect(Object.keys(histogram).sort()).toEqual(["201", "412"])
      const held = answers.flatMap((a, i) => a.status === 201 ? [{ quantity: quantities[i]!, ...(json(a as never) as { seats: Array<number> }) }] : [])
      for (const h of held) expect(h.seats).toHaveLength(h.quantity)
      const seats = held.flatMap((h) => h.seats)
      expect(new Set(seats).size).toBe(seats.length)
      // Every refusal says how many were left, fewer than it asked for; once a request for one
      // seat is refused, nothing was left.
      const left = answers.flatMap((a, i) => {
        if (a.status !== 412) return []
        const match = /only (\d+) seat|no seats are left/.exec((JSON.parse(a.body) as { error: string }).error)
        expect(match).not.toBeNull()
        const n = match![1] === undefined ? 0 : Number(match![1])
        expect(n).toBeLessThan(quantities[i]!)
        return [n]
      })
      expect(Math.min(...left)).toBe(500 - seats.length)
      expect(seats.length).toBeGreaterThan(490)
      // A handful of commits for the whole burst, not one per request.
      expect(Number(after!.commits) - Number(before!.commits)).toBeLessThan(300)

      expect(row!.held).toBe(seats.length)

      // The holds lapse; every seat is sellable again.
      yield* eventually(
        sql<{ held: number }>`SELECT count(*)::int AS held FROM held_seats WHERE concert_id = ${concertId}`,
        (rows) => rows[0]!.held === 0,
        { within: `${holdSeconds + 15} seconds` }
      )
      // New connections: those of the burst sat idle past the server's keep-alive timeout while
      // the holds lapsed, and a client reusing one races the server closing it.
      agent.destroy()
      const buyers = new http.Agent({ keepAlive: true, maxSockets: 500 })
      const bought = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 501 }, (_, i) =>
          post(buyers, port, "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(i) }))
        ))
      )
      buyers.destroy()
      expect(bought.filter((b) => b.status === 201)).toHaveLength(500)
      expect(bought.filter((b) => b.status === 422)).toHaveLength(1)
    }))
})
