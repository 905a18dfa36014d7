import { expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { journalRows, outcomesOf } from "../../src/actors/PurchaseBatch.js"
import * as SeatLedger from "../../src/actors/SeatLedger.js"
import { Concert } from "../../src/domain/Concert.js"
import type { PurchaseOrder } from "../../src/domain/ConcertEntity.js"
import { defaultSale } from "../../src/domain/Sale.js"
import { ConcertCancelled, IdempotencyKeyReused, SoldOut } from "../../src/domain/Errors.js"
import { ConcertId, TicketId, UserId } from "../../src/domain/Ids.js"
import { TicketRecord } from "../../src/domain/Ticket.js"

const concertId = ConcertId.make("00000000-0000-4000-8000-000000000001")
const ticketId = (i: number) => TicketId.make(`00000000-0000-4000-8000-${String(i).padStart(12, "0")}`)

const order = fc.record({
  user: fc.constantFrom("u1", "u2"),
  key: fc.option(fc.constantFrom("k1", "k2", "k3"), { nil: undefined })
})

it.prop(
  "every order gets one answer, in order: a ticket for each seat journaled, a repeat's answer is its first's",
  [
    fc.integer({ min: 1, max: 8 }),
    fc.integer({ min: 0, max: 8 }),
    fc.constantFrom("ACTIVE" as const, "CANCELLED" as const),
    fc.array(order, { minLength: 1, maxLength: 12 }),
    fc.constantFrom<ReadonlyArray<string>>([], ["k1"], ["k2", "k3"])
  ],
  ([capacity, soldBefore, status, raw, keysUsedBefore]) => {
    const sold = Math.min(soldBefore, capacity)
    const ledger: SeatLedger.Ledger = {
      concert: new Concert({ id: concertId, name: "n", venue: "v", date: "2027-01-01", capacity, status }),
      version: 1,
      sale: defaultSale,
      next: sold,
      free: []
    }
    const orders: Array<PurchaseOrder> = raw.map(({ key, user }, i) => ({
      ticketId: ticketId(i + 1),
      userId: UserId.make(user),
      ...(key === undefined ? {} : { idempotencyKey: key })
    }))
    // Keys bought earlier, by u1 at this concert.
    const existing = new Map(keysUsedBefore.map((key, i) => [
      key,
      new TicketRecord({ id: ticketId(1000 + i), concertId, userId: UserId.make("u1"), seat: 1, printStatus: "NOT_PRINTED" })
    ]))
    const plan = SeatLedger.plan(ledger, orders, existing)
    const outcomes = outcomesOf(concertId, orders, plan)
    const rows = journalRows(orders, plan)

    expect(outcomes).toHaveLength(orders.length)
    // Exactly the allocated orders are journaled, with their own ticket ids and seats in order.
    expect(rows.map((r) => r.seat)).toEqual(Array.from({ length: rows.length }, (_, i) => sold + i + 1))
    expect(rows.length).toBe(plan.allocated)
    plan.outcomes.forEach((planned, i) => {
      const answer = outcomes[i]
      switch (planned._tag) {
        case "Allocated":
          expect(answer).toBeInstanceOf(TicketRecord)
          expect(answer).toMatchObject({ id: orders[i]!.ticketId, concertId, userId: orders[i]!.userId, seat: planned.seat })
          expect(rows).toContainEqual({
            id: orders[i]!.ticketId,
            seat: planned.seat,
            userId: orders[i]!.userId,
            idempotencyKey: orders[i]!.idempotencyKey
          })
          break
        case "Existing":
          expect(answer).toBe(existing.get(orders[i]!.idempotencyKey!))
          break
        case "SameAs":
          expect(answer).toBe(outcomes[planned.index])
          break
        case "KeyReused":
          expect(answer).toEqual(IdempotencyKeyReused.of())
          break
        case "Refused":
          expect(answer).toEqual(
            planned.reason === "Cancelled" ? ConcertCancelled.of() : SoldOut.of()
          )
      }
    })
    // Never more tickets than seats.
    expect(sold + rows.length).toBeLessThanOrEqual(capacity)
  }
)
