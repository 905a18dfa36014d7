import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as SeatLedger from "../../src/actors/SeatLedger.js"
import { Concert, type ConcertStatus } from "../../src/domain/Concert.js"
import { ConcertId } from "../../src/domain/Ids.js"
import { defaultSale } from "../../src/domain/Sale.js"

const concertId = ConcertId.make("00000000-0000-4000-8000-000000000001")

const ledgerOf = (capacity: number, sold: number, status: ConcertStatus = "ACTIVE"): SeatLedger.Ledger => ({
  concert: new Concert({ id: concertId, name: "n", venue: "v", date: "2027-01-01", capacity, status }),
  version: 1,
  sale: defaultSale,
  next: sold,
  free: []
})

const request = (i: number, key?: string, user = "u"): SeatLedger.PurchaseRequest =>
  key === undefined ? { ticketId: `t${i}`, userId: user } : { ticketId: `t${i}`, userId: user, idempotencyKey: key }

describe("SeatLedger", () => {
  it.prop(
    "never allocates more than capacity, each seat once, in order, across consecutive batches",
    [fc.integer({ min: 1, max: 300 }), fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 12 })],
    ([capacity, batches]) => {
      let ledger = ledgerOf(capacity, 0)
      const seats: Array<number> = []
      let attempts = 0
      for (const size of batches) {
        const plan = SeatLedger.plan(ledger, Array.from({ length: size }, (_, i) => request(attempts + i)), new Map())
        attempts += size
        for (const outcome of plan.outcomes) {
          if (outcome._tag === "Allocated") seats.push(outcome.seat)
          else expect(outcome).toEqual({ _tag: "Refused", reason: "SoldOut" })
        }
        ledger = plan.ledger
      }
      expect(seats.length).toBe(Math.min(capacity, attempts))
      expect(seats).toEqual(Array.from({ length: seats.length }, (_, i) => i + 1))
      expect(SeatLedger.taken(ledger)).toBe(seats.length)
      expect(ledger.concert.status).toBe(seats.length === capacity ? "SOLD_OUT" : "ACTIVE")
    }
  )

  it.prop(
    "a repeated idempotency key never buys a second seat",
    [fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 40 })],
    ([keys]) => {
      const plan = SeatLedger.plan(ledgerOf(1000, 0), keys.map((k, i) => request(i, `k${k}`)), new Map())
      expect(plan.allocated).toBe(new Set(keys).size)
      plan.outcomes.forEach((outcome, i) => {
        if (outcome._tag === "SameAs") expect(keys[outcome.index]).toBe(keys[i])
      })
    }
  )

  it("answers a key journaled earlier with its ticket, or KeyReused for another body", () => {
    const earlier = { id: "t0", concertId, userId: "u" }
    const plan = SeatLedger.plan(
      ledgerOf(10, 1),
      [request(1, "k"), request(2, "k", "someone else")],
      new Map([["k", earlier]])
    )
    expect(plan.outcomes).toEqual([{ _tag: "Existing", ticket: earlier }, { _tag: "KeyReused" }])
    expect(plan.allocated).toBe(0)
  })

  it("refuses purchases for cancelled and closed concerts", () => {
    expect(SeatLedger.plan(ledgerOf(10, 0, "CANCELLED"), [request(1)], new Map()).outcomes)
      .toEqual([{ _tag: "Refused", reason: "Cancelled" }])
    expect(SeatLedger.plan(ledgerOf(10, 0, "SOLD_OUT"), [request(1)], new Map()).outcomes)
      .toEqual([{ _tag: "Refused", reason: "SoldOut" }])
  })

  it("an update bumps the version; a full concert cannot be reopened", () => {
    const full = SeatLedger.applyUpdate(ledgerOf(2, 2, "SOLD_OUT"), { status: "ACTIVE", name: "new" })
    expect(full.version).toBe(2)
    expect(full.concert.status).toBe("SOLD_OUT")
    expect(full.concert.name).toBe("new")
    expect(SeatLedger.applyUpdate(ledgerOf(2, 1, "SOLD_OUT"), { status: "ACTIVE" }).concert.status).toBe("ACTIVE")
    expect(SeatLedger.applyUpdate(ledgerOf(2, 2), { status: "CANCELLED" }).concert.status).toBe("CANCELLED")
  })
})
