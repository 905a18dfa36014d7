import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { json, raw, TestAppWith } from "../fixtures/Http.js"
import { eventually } from "../fixtures/eventually.js"

const user = "00000000-0000-0000-0000-000000000007"

const concert = (name: string, date: string, capacity: number) =>
  raw("POST", "/api/v1/concerts", JSON.stringify({ name, venue: "Hall", date, capacity, status: "ACTIVE" })).pipe(
    Effect.map((r) => (json(r) as { id: string }).id)
  )

const buy = (concertId: string, count: number) =>
  Effect.forEach(Array.from({ length: count }), () =>
    raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user })).pipe(
      Effect.map((r) => (json(r) as { id: string }).id)
    ), { concurrency: 16 })

const statuses = (concertId: string) =>
  raw("GET", `/api/v1/tickets?concert_id=${concertId}`).pipe(
    Effect.map((r) => json(r) as Array<{ id: string; print_status: string }>)
  )

const settled = (concertId: string) =>
  eventually(statuses(concertId), (tickets) => tickets.every((t) => t.print_status !== "PENDING"), { within: "30 seconds" })

const today = () => new Date().toISOString().slice(0, 10)

layer(TestAppWith({ RENDER_WORKERS: "1" }), { excludeTestServices: true, timeout: "120 seconds" })("print pipeline", (it) => {
  it.effect("Q6: tonight's print overtakes a backlog for next year, but for a bounded few in flight", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const far = yield* concert("Next year", "2099-12-31", 400)
      const tonight = yield* concert("Tonight", today(), 10)
      const backlog = yield* buy(far, 300)
      const [urgent] = yield* buy(tonight, 1)
      yield* Effect.forEach(backlog, (id) => raw("POST", `/api/v1/tickets/${id}/print`), { concurrency: 32 })
      const [{ done }] = yield* sql<{ done: number }>`
        SELECT count(*)::int AS done FROM tickets WHERE concert_id = ${far} AND print_status = 'PRINTED'`
      yield* raw("POST", `/api/v1/tickets/${urgent}/print`)
      yield* settled(tonight)
      yield* settled(far)
      const [{ before }] = yield* sql<{ before: number }>`
        SELECT count(*)::int AS before FROM ticket_prints p JOIN tickets t ON t.id = p.ticket_id
        WHERE t.concert_id = ${far}
          AND p.printed_at < (SELECT printed_at FROM ticket_prints WHERE ticket_id = ${urgent!})`
      // Only those printed before it was asked for came before it, and the jobs already running
      // then: four print fibers a render thread (RENDER_WORKERS is 1 here), counted twice, for
      // the prints that finish and start while the request for it is on its way.
      expect(before).toBeLessThanOrEqual(done + 2 * 4)
      // ...and it came before the backlog was done.
      expect(before).toBeLessThan(backlog.length)
    }))

  it.effect.prop(
    "Q7: whatever the interleaving of prints, renames and waits, a printed ticket only ever shows the current name",
    [fc.array(
      fc.oneof(
        fc.record({ op: fc.constant("print" as const), ticket: fc.nat({ max: 4 }) }),
        fc.record({ op: fc.constant("rename" as const), to: fc.nat({ max: 1000 }) }),
        fc.record({ op: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 40 }) })
      ),
      { minLength: 1, maxLength: 14 }
    )],
    ([ops]) =>
      Effect.gen(function*() {
        let name = "Elsa on Ice"
        const concertId = yield* concert(name, "2030-01-01", 10)
        const tickets = yield* buy(concertId, 5)
        const check = Effect.forEach(tickets, (id) =>
          raw("GET", `/api/v1/tickets/${id}/print`).pipe(Effect.map((r) => {
            if (r.status === 200) expect(r.body).toContain(`>${name}<`)
          })), { discard: true })
        for (const op of ops) {
          if (op.op === "print") yield* raw("POST", `/api/v1/tickets/${tickets[op.ticket]}/print`)
          else if (op.op === "wait") yield* Effect.sleep(`${op.ms} millis`)
          else {
            name = `Bob on Ice ${op.to}`
            const put = yield* raw("PUT", `/api/v1/concerts/${concertId}`, JSON.stringify({ name }))
            expect(put.status).toBe(200)
          }
          yield* check
        }
        const final = yield* settled(concertId)
        expect(final.every((t) => t.print_status !== "PENDING")).toBe(true)
        yield* check
      }),
    { fastCheck: { numRuns: 10 } }
  )
})
