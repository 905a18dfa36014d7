import { describe, expect, it } from "@effect/vitest"
import { Concert } from "../../src/domain/Concert.js"
import type { RegisterOrder } from "../../src/domain/ConcertEntity.js"
import { ConcertId, UserId } from "../../src/domain/Ids.js"
import { RegistrationId, RegistrationRecord } from "../../src/domain/Registration.js"
import { defaultSale } from "../../src/domain/Sale.js"
import { planRegistrations } from "../../src/actors/Registrations.js"

const concertId = ConcertId.make("00000000-0000-4000-8000-000000000001")
const ledger = {
  concert: new Concert({ id: concertId, name: "n", venue: "v", date: "2027-01-01", capacity: 2, status: "SOLD_OUT" }),
  version: 1,
  sale: defaultSale,
  next: 2,
  free: []
}
const order = (id: string, user: string): RegisterOrder => ({
  _tag: "Register",
  registrationId: RegistrationId.make(id),
  userId: UserId.make(user),
  quantity: 1
})

describe("planRegistrations", () => {
  it("a resent order finds its own registration; another order of the same user is refused with its id", () => {
    const first = order("00000000-0000-4000-8000-00000000000a", "u1")
    const { added } = planRegistrations(concertId, ledger, new Map(), new Map(), () => 1, [first])
    const saved = added[0]!
    expect(saved).toMatchObject({ status: "WAITING", lineNo: 1 })
    const live = new Map<string, RegistrationRecord>([[saved.id, saved]])
    const byUser = new Map([["u1", saved.id]])
    const again = planRegistrations(concertId, ledger, byUser, live, () => 2, [first, order("00000000-0000-4000-8000-00000000000b", "u1")])
    expect(again.outcomes[0]).toBe(saved)
    expect(again.outcomes[1]).toMatchObject({ _tag: "AlreadyRegistered" })
    expect(again.added).toEqual([])
  })
})
