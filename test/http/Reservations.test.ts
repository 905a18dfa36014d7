import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { eventually } from "../fixtures/eventually.js"
import { json, raw, TestApp } from "../fixtures/Http.js"

const alice = "00000000-0000-0000-0000-000000000001"
const bob = "00000000-0000-0000-0000-000000000002"

interface Reservation {
  readonly id: string
  readonly quantity: number
  readonly seats: ReadonlyArray<number>
  readonly status: string
  readonly expires_at: string | null
  readonly invoice_number: number | null
  readonly tickets: ReadonlyArray<{ readonly id: string; readonly print_status: string }>
}

const createConcert = (capacity: number) =>
  Effect.map(
    raw("POST", "/api/v1/concerts", JSON.stringify({ name: "N", venue: "V", date: "2027-01-01", capacity, status: "ACTIVE" })),
    (response) => (json(response) as { id: string }).id
  )

const reserve = (concertId: string, quantity: unknown, user = alice, headers: Record<string, string> = {}) =>
  raw("POST", "/api/v1/reservations", JSON.stringify({ concert_id: concertId, user_id: user, quantity }), headers)

const step = (id: string, action: "checkout" | "payment") => raw("POST", `/api/v1/reservations/${id}/${action}`)
const cancel = (id: string) => raw("DELETE", `/api/v1/reservations/${id}`)
const status = (concertId: string) =>
  Effect.map(raw("GET", `/api/v1/concerts/${concertId}`), (r) => (json(r) as { status: string }).status)

layer(TestApp, { excludeTestServices: true, timeout: "60 seconds" })("reservations", (it) => {
  it.effect("sale settings: defaults that change nothing, a PUT of a subset, 400 and 404", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(5)
      const sale = yield* raw("GET", `/api/v1/concerts/${id}/sale`)
      expect(sale.status).toBe(200)
      expect(json(sale)).toEqual({
        concert_id: id,
        max_per_reservation: 10,
        hold_seconds: 600,
        payment_seconds: 172800,
        mode: "FIRST_COME",
        opens_at: null,
        draw: null
      })
      const changed = yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ max_per_reservation: 4 }))
      expect(changed.status).toBe(200)
      expect(json(changed)).toMatchObject({ max_per_reservation: 4, hold_seconds: 600 })
      for (const body of [{ max_per_reservation: 0 }, { hold_seconds: 1.5 }, { mode: "LOTTERY" }, { opens_at: "soon" }, { nope: 1 }]) {
        expect((yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify(body))).status).toBe(400)
      }
      expect((yield* raw("GET", "/api/v1/concerts/999/sale")).status).toBe(404)
      expect((yield* raw("PUT", "/api/v1/concerts/00000000-0000-4000-8000-000000000000/sale", "{}")).status).toBe(404)
    }))

  it.effect("holds all or nothing, 412 with what is left, SOLD_OUT while all is held, seats back on cancel", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(5)
      const first = yield* reserve(id, 3)
      expect(first.status).toBe(201)
      const held = json(first) as Reservation
      expect(held).toMatchObject({ quantity: 3, seats: [1, 2, 3], status: "HELD", invoice_number: null, tickets: [] })
      expect(Date.parse(held.expires_at!) - Date.now()).toBeGreaterThan(590_000)

      const tooMany = yield* reserve(id, 3, bob)
      expect(tooMany.status).toBe(412)
      expect(json(tooMany)).toEqual({ error: "only 2 seats are left (asked for 3); ask for 2 or fewer" })

      const second = json(yield* reserve(id, 2, bob)) as Reservation
      expect(second.seats).toEqual([4, 5])
      expect(yield* status(id)).toBe("SOLD_OUT")
      const buy = yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: alice }))
      expect(buy.status).toBe(422)
      expect((yield* reserve(id, 1)).status).toBe(412)

      const cancelled = yield* cancel(second.id)
      expect(cancelled.status).toBe(200)
      expect(json(cancelled)).toMatchObject({ status: "CANCELLED", expires_at: null, invoice_number: null })
      expect(yield* status(id)).toBe("ACTIVE")
      // The seats that came back are sellable at once, lowest first.
      const ticket = yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: alice }))
      expect(ticket.status).toBe(201)
      expect((json(yield* reserve(id, 1, bob)) as Reservation).seats).toEqual([5])
      expect(yield* status(id)).toBe("SOLD_OUT")
      expect((yield* cancel(second.id)).status).toBe(200)
    }))

  it.effect("checkout takes an invoice number, payment confirms with ordinary tickets, wrong states are 409", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(10)
      const a = json(yield* reserve(id, 2)) as Reservation
      const checkedOut = yield* step(a.id, "checkout")
      expect(checkedOut.status).toBe(200)
      const awaiting = json(checkedOut) as Reservation
      expect(awaiting.status).toBe("AWAITING_PAYMENT")
      expect(typeof awaiting.invoice_number).toBe("number")
      expect(Date.parse(awaiting.expires_at!) - Date.now()).toBeGreaterThan(172_000_000)
      expect((yield* step(a.id, "checkout")).status).toBe(409)

      const paid = json(yield* step(a.id, "payment")) as Reservation
      expect(paid).toMatchObject({ status: "CONFIRMED", expires_at: null, invoice_number: awaiting.invoice_number })
      expect(paid.tickets).toHaveLength(2)
      for (const ticket of paid.tickets) {
        expect((yield* raw("GET", `/api/v1/tickets/${ticket.id}`)).status).toBe(200)
      }
      expect(json(yield* step(a.id, "payment"))).toEqual(paid)
      expect(json(yield* raw("GET", `/api/v1/reservations/${a.id}`))).toEqual(paid)
      const refused = yield* cancel(a.id)
      expect(refused.status).toBe(409)
      expect((json(refused) as { error: string }).error).toContain("CONFIRMED")

      // Straight from HELD: checked out and confirmed in one step.
      const b = json(yield* reserve(id, 1)) as Reservation
      expect(json(yield* step(b.id, "payment"))).toMatchObject({ status: "CONFIRMED" })
      expect((json(yield* step(b.id, "payment")) as Reservation).invoice_number).not.toBeNull()

      const c = json(yield* reserve(id, 1)) as Reservation
      expect((yield* cancel(c.id)).status).toBe(200)
      expect((yield* step(c.id, "payment")).status).toBe(409)
      expect((yield* step(c.id, "checkout")).status).toBe(409)

      const listed = json(yield* raw("GET", `/api/v1/reservations?concert_id=${id}`)) as Array<Reservation>
      expect(listed.map((r) => r.id)).toEqual([a.id, b.id, c.id])
      expect((yield* raw("GET", "/api/v1/reservations?user_id=nobody")).status).toBe(404)
      expect((yield* raw("GET", "/api/v1/reservations?concert_id=999")).status).toBe(404)
    }))

  it.effect("a cancelled checkout's number is recycled, lowest first; GET /invoices shows the pool", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(20)
      const numbers: Array<number> = []
      const reservations: Array<Reservation> = []
      for (let i = 0; i < 3; i++) {
        const r = json(yield* reserve(id, 1)) as Reservation
        const out = json(yield* step(r.id, "checkout")) as Reservation
        numbers.push(out.invoice_number!)
        reservations.push(out)
      }
      expect(numbers[1]).toBe(numbers[0]! + 1)
      expect(numbers[2]).toBe(numbers[0]! + 2)
      // Return the last two, highest first: the next checkout takes the lower of them.
      yield* cancel(reservations[2]!.id)
      yield* cancel(reservations[1]!.id)
      const invoices = json(yield* raw("GET", `/api/v1/invoices?from=${numbers[0]}&to=${numbers[2]}`))
      expect(invoices).toEqual([
        { number: numbers[0], reservation_id: reservations[0]!.id, status: "AWAITING_PAYMENT" },
        { number: numbers[1], reservation_id: null, status: "RECYCLED" },
        { number: numbers[2], reservation_id: null, status: "RECYCLED" }
      ])
      const next = json(yield* step((json(yield* reserve(id, 1)) as Reservation).id, "checkout")) as Reservation
      expect(next.invoice_number).toBe(numbers[1])
    }))

  it.effect("a concert cancelled cancels its holds: none can be checked out or paid for, their numbers go back", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(6)
      const held = json(yield* reserve(id, 2)) as Reservation
      const awaiting = json(yield* step((json(yield* reserve(id, 2, bob)) as Reservation).id, "checkout")) as Reservation
      const paid = json(yield* step((json(yield* reserve(id, 1)) as Reservation).id, "payment")) as Reservation
      expect((yield* raw("PUT", `/api/v1/concerts/${id}`, JSON.stringify({ status: "CANCELLED" }))).status).toBe(200)
      for (const r of [held, awaiting]) {
        for (const action of ["checkout", "payment"] as const) {
          const refused = yield* step(r.id, action)
          expect([r.id, action, refused.status]).toEqual([r.id, action, 409])
        }
        expect((json(yield* raw("GET", `/api/v1/reservations/${r.id}`)) as Reservation).status).toBe("CANCELLED")
      }
      // What was paid before stays paid; nothing else became a ticket.
      expect((json(yield* raw("GET", `/api/v1/reservations/${paid.id}`)) as Reservation).status).toBe("CONFIRMED")
      expect(json(yield* raw("GET", `/api/v1/tickets?concert_id=${id}`))).toHaveLength(1)
      const invoices = json(yield* raw("GET", `/api/v1/invoices?from=${awaiting.invoice_number}&to=${awaiting.invoice_number}`))
      expect(invoices).toEqual([{ number: awaiting.invoice_number, reservation_id: null, status: "RECYCLED" }])
    }))

  it.effect("a hold expires within a second of its time; its seats are sellable again", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(2)
      yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ hold_seconds: 1, payment_seconds: 2 }))
      const held = json(yield* reserve(id, 2)) as Reservation
      const awaiting = json(yield* reserve(id, 1)) as { error: string }
      expect(awaiting.error).toContain("no seats are left")
      const expired = yield* eventually(
        Effect.map(raw("GET", `/api/v1/reservations/${held.id}`), (r) => json(r) as Reservation),
        (r) => r.status === "EXPIRED",
        { within: "5 seconds" }
      )
      expect(expired).toMatchObject({ status: "EXPIRED", expires_at: null })
      expect(Date.now() - Date.parse(held.expires_at!)).toBeLessThan(2500)
      expect(yield* status(id)).toBe("ACTIVE")
      const again = json(yield* reserve(id, 2, bob)) as Reservation
      expect(again.seats).toEqual([1, 2])
      // An unpaid checkout lapses too, and its number goes back to the pool.
      const out = json(yield* step(again.id, "checkout")) as Reservation
      yield* eventually(
        Effect.map(raw("GET", `/api/v1/reservations/${again.id}`), (r) => json(r) as Reservation),
        (r) => r.status === "EXPIRED",
        { within: "6 seconds" }
      )
      const pool = json(yield* raw("GET", `/api/v1/invoices?from=${out.invoice_number}&to=${out.invoice_number}`))
      expect(pool).toEqual([{ number: out.invoice_number, reservation_id: null, status: "RECYCLED" }])
    }))

  it.effect("before opens_at buying and reserving are 409 with Retry-After; at null they sell", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(5)
      const opensAt = new Date(Date.now() + 60_000).toISOString()
      const changed = yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ opens_at: opensAt }))
      expect(json(changed)).toMatchObject({ opens_at: opensAt })
      for (
        const response of [
          yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: alice })),
          yield* reserve(id, 2)
        ]
      ) {
        expect(response.status).toBe(409)
        expect(Number(response.headers["retry-after"])).toBeGreaterThan(55)
        expect(Number(response.headers["retry-after"])).toBeLessThanOrEqual(60)
        expect((json(response) as { error: string }).error).toBe(`the sale opens at ${opensAt}; retry then`)
      }
      yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ opens_at: null }))
      expect((yield* reserve(id, 2)).status).toBe(201)
      expect((yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: alice }))).status).toBe(201)
    }))

  it.effect("an Idempotency-Key repeat returns the same reservation (with its tickets once paid); another body is 422", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(5)
      const key = { "idempotency-key": `hold-${id}` }
      const first = json(yield* reserve(id, 2, alice, key)) as Reservation
      const again = yield* reserve(id, 2, alice, key)
      expect(again.status).toBe(201)
      expect(json(again)).toEqual(first)
      expect((yield* reserve(id, 3, alice, key)).status).toBe(422)
      expect((yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: alice }), key)).status).toBe(422)
      const paid = json(yield* step(first.id, "payment")) as Reservation
      expect(json(yield* reserve(id, 2, alice, key))).toEqual(paid)
      expect(((json(yield* raw("GET", `/api/v1/concerts/${id}`))) as { capacity: number }).capacity).toBe(5)
      expect((json(yield* reserve(id, 3)) as Reservation).seats).toEqual([3, 4, 5])
    }))

  it.effect("the seating plan shows held seats apart from sold ones", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(5)
      yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: alice }))
      const held = json(yield* reserve(id, 2)) as Reservation
      const count = (svg: string, cls: string) => svg.split(`class="${cls}"`).length - 1
      const plan = yield* eventually(
        Effect.map(raw("GET", `/api/v1/concerts/${id}/seats`), (r) => r.body),
        (svg) => count(svg, "h") === 2,
        { within: "10 seconds" }
      )
      expect(count(plan, "p")).toBe(1)
      expect(count(plan, "s")).toBe(2)
      expect(plan).toContain(`<desc>${id}|5|1</desc>`)
      yield* step(held.id, "payment")
      const paid = yield* eventually(
        Effect.map(raw("GET", `/api/v1/concerts/${id}/seats`), (r) => r.body),
        (svg) => count(svg, "p") === 3,
        { within: "10 seconds" }
      )
      expect(count(paid, "h")).toBe(0)
      expect(paid).toContain(`<desc>${id}|5|3</desc>`)
    }))

  it.effect("bad input on every reservation path is a 4xx with a JSON error", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(5)
      const cases: Array<readonly [string, string, string | undefined, number]> = [
        ...[0, 11, 1.5, "3", 1e9, -1, null].map((q) =>
          ["POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: alice, quantity: q }), 400] as const
        ),
        ["POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: alice }), 400],
        ["POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: "nobody", quantity: 1 }), 400],
        ["POST", "/api/v1/reservations", JSON.stringify({ concert_id: "999", user_id: alice, quantity: 1 }), 400],
        ["POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: alice, quantity: 1, seats: [1] }), 400],
        ["POST", "/api/v1/reservations", "{", 400],
        ["GET", "/api/v1/reservations/999", undefined, 404],
        ["GET", "/api/v1/reservations/00000000-0000-4000-8000-000000000000", undefined, 404],
        ["POST", "/api/v1/reservations/999/checkout", undefined, 404],
        ["POST", "/api/v1/reservations/00000000-0000-4000-8000-000000000000/payment", undefined, 404],
        ["DELETE", "/api/v1/reservations/999", undefined, 404],
        ["GET", "/api/v1/invoices?from=x", undefined, 400],
        ["GET", "/api/v1/invoices?from=0", undefined, 400]
      ]
      const failures: Array<string> = []
      for (const [method, path, body, expected] of cases) {
        const response = yield* raw(method, path, body)
        const error = response.headers["content-type"] === "application/json" ? (json(response) as { error?: unknown }).error : undefined
        if (response.status !== expected || typeof error !== "string") {
          failures.push(`${method} ${path} ${body ?? ""} -> ${response.status} ${response.body.slice(0, 200)}`)
        }
      }
      expect(failures).toEqual([])
      const over = yield* reserve(id, 11)
      expect(json(over)).toEqual({ error: "quantity must be at most 10 for this concert (max_per_reservation)" })
      // Also where this process already knows the concert is full and answers holds itself.
      const full = yield* createConcert(1)
      const purchase = JSON.stringify({ concert_id: full, user_id: bob })
      expect((yield* raw("POST", "/api/v1/tickets", purchase)).status).toBe(201)
      expect((yield* raw("POST", "/api/v1/tickets", purchase)).status).toBe(422)
      expect(json(yield* reserve(full, 0))).toEqual({ error: "quantity must be a whole number from 1 to 10 for this concert (max_per_reservation)" })
      // Any quantity outside 1..max is answered with the concert's limit (ONSALE.md §2).
      yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ max_per_reservation: 4 }))
      for (const quantity of [0, -1, 1.5]) {
        const outside = yield* reserve(id, quantity)
        expect([quantity, outside.status, json(outside)]).toEqual([
          quantity,
          400,
          { error: "quantity must be a whole number from 1 to 4 for this concert (max_per_reservation)" }
        ])
        const registered = yield* raw("POST", `/api/v1/concerts/${id}/registrations`, JSON.stringify({ user_id: alice, quantity }))
        expect([quantity, registered.status, json(registered)]).toEqual([
          quantity,
          400,
          { error: "quantity must be a whole number from 1 to 4 for this concert (max_per_reservation)" }
        ])
      }
    }))
})
