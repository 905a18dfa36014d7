import { describe, expect, it } from "@effect/vitest"
import * as crypto from "node:crypto"
import * as Draw from "../../src/actors/Draw.js"

const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, quantity: 1 }))

/** A fixed seed per draw: the test can never flake. */
const seedOf = (i: number) => crypto.createHash("sha256").update(`draw ${i}`).digest()

describe("Draw", () => {
  it("the order is by HMAC-SHA256 of the id keyed with the seed, ascending hex, as openssl computes it", () => {
    const seed = seedOf(1)
    const registrations = ids(50)
    const order = Draw.drawOrder(seed, registrations)
    const keys = order.map((r) => crypto.createHmac("sha256", seed).update(r.id).digest("hex"))
    expect([...keys].sort()).toEqual(keys)
    expect(new Set(order.map((r) => r.id))).toEqual(new Set(registrations.map((r) => r.id)))
    expect(Draw.commitment(seed)).toBe(crypto.createHash("sha256").update(seed).digest("hex"))
    // The order does not depend on the order the registrations came in.
    expect(Draw.drawOrder(seed, [...registrations].reverse())).toEqual(order)
  })

  it("allocates in order to each whose quantity fits; the rest wait in order", () => {
    const line = [{ id: "a", quantity: 3 }, { id: "b", quantity: 4 }, { id: "c", quantity: 2 }, { id: "d", quantity: 1 }]
    const { offered, waiting } = Draw.allocate(line, 6)
    expect(offered.map((r) => r.id)).toEqual(["a", "c", "d"])
    expect(waiting.map((r) => r.id)).toEqual(["b"])
  })

  it("is fair: over 4,000 fixed-seed draws every registration wins as often as its share predicts (chi-square, p = 0.001)", () => {
    const registrations = ids(20)
    const seats = 5
    const draws = 4000
    const wins = new Map(registrations.map((r) => [r.id, 0]))
    for (let i = 0; i < draws; i++) {
      const { offered } = Draw.allocate(Draw.drawOrder(seedOf(i), registrations), seats)
      for (const r of offered) wins.set(r.id, wins.get(r.id)! + 1)
    }
    const expected = (draws * seats) / registrations.length
    const chiSquare = [...wins.values()].reduce((sum, observed) => sum + (observed - expected) ** 2 / expected, 0)
    // 19 degrees of freedom: the 0.999 quantile of chi-square is 43.82.
    expect(chiSquare).toBeLessThan(43.82)
    // And the first place is uniform too (the draw is a permutation, not only a winner set).
    const first = new Map<string, number>()
    for (let i = 0; i < draws; i++) {
      const top = Draw.drawOrder(seedOf(i), registrations)[0]!.id
      first.set(top, (first.get(top) ?? 0) + 1)
    }
    const perPlace = draws / registrations.length
    const firstChi = registrations.reduce((sum, r) => sum + ((first.get(r.id) ?? 0) - perPlace) ** 2 / perPlace, 0)
    expect(firstChi).toBeLessThan(43.82)
  })
})
