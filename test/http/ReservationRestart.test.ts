import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import pg from "pg"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { eventually } from "../fixtures/eventually.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"

const user = (i: number) => `00000000-0000-0000-0000-${String(i + 1).padStart(12, "0")}`

interface Reservation {
  readonly id: string
  readonly status: string
  readonly invoice_number: number | null
}

it.scopedLive("holds that lapse while the service is down are released when it starts; invoice numbers stay gap-free", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const first = yield* serviceResource({ DATABASE_URL: url })
    const concertId = yield* Effect.promise(() => postConcert(first.port, 10, "Restart"))
    const call = (port: number, method: string, path: string, body?: unknown) =>
      Effect.promise(() => rawRequest(port, method, path, body === undefined ? undefined : JSON.stringify(body)))
    yield* call(first.port, "PUT", `/api/v1/concerts/${concertId}/sale`, { hold_seconds: 2, payment_seconds: 3 })
    const reserve = (port: number, i: number, quantity: number) =>
      Effect.map(
        call(port, "POST", "/api/v1/reservations", { concert_id: concertId, user_id: user(i), quantity }),
        (r) => JSON.parse(r.body) as Reservation
      )
    const held = yield* reserve(first.port, 0, 4)
    const paid = yield* reserve(first.port, 1, 2)
    const unpaid = yield* reserve(first.port, 2, 3)
    const confirmed = JSON.parse((yield* call(first.port, "POST", `/api/v1/reservations/${paid.id}/payment`)).body) as Reservation
    const awaiting = JSON.parse((yield* call(first.port, "POST", `/api/v1/reservations/${unpaid.id}/checkout`)).body) as Reservation
    expect([confirmed.status, awaiting.status]).toEqual(["CONFIRMED", "AWAITING_PAYMENT"])
    // Killed with live holds: their expiries pass while nothing runs.
    first.process.kill("SIGKILL")
    yield* Effect.promise(() => first.exited)
    yield* Effect.sleep("3500 millis")

    const second = yield* serviceResource({ DATABASE_URL: url })
    const statusOf = (id: string) =>
      Effect.map(call(second.port, "GET", `/api/v1/reservations/${id}`), (r) => (JSON.parse(r.body) as Reservation).status)
    yield* eventually(
      Effect.all([statusOf(held.id), statusOf(unpaid.id)]),
      (statuses) => statuses.every((s) => s === "EXPIRED"),
      { within: "3 seconds" }
    )
    expect(yield* statusOf(paid.id)).toBe("CONFIRMED")
    // Every seat but the two sold is sellable again.
    const again = yield* reserve(second.port, 3, 8)
    expect(again.status).toBe("HELD")

    const db = new pg.Client({ connectionString: url })
    yield* Effect.acquireRelease(Effect.promise(() => db.connect()), () => Effect.promise(() => db.end()))
    const numbers = yield* Effect.promise(async () => {
      const held = await db.query<{ n: number }>(
        `SELECT invoice_number AS n FROM reservations WHERE status IN ('AWAITING_PAYMENT', 'CONFIRMED')
         UNION ALL SELECT number FROM invoice_pool ORDER BY 1`
      )
      const last = await db.query<{ n: number }>(`SELECT last_number AS n FROM invoice_sequences WHERE organiser_id = 'default'`)
      return { all: held.rows.map((r) => r.n), last: last.rows[0]!.n }
    })
    expect(numbers.all).toEqual(Array.from({ length: numbers.last }, (_, i) => i + 1))
  }), 120_000)
