import { describe, expect, it } from "@effect/vitest"
import { quantile } from "../../src/http/Dashboard.js"

/** Cumulative buckets as Effect's histograms keep them: [upper bound, observations ≤ it]. */
const buckets = (counts: ReadonlyArray<number>, bounds = [0.01, 0.1, 1, Infinity]) => {
  let total = 0
  return bounds.map((bound, i) => [bound, (total += counts[i] ?? 0)] as const)
}

describe("quantile", () => {
  it("is interpolated within the bucket that holds the rank", () => {
    // 100 observations: 50 up to 10 ms, 50 between 10 and 100 ms.
    expect(quantile(undefined, buckets([50, 50, 0, 0]), 0.5)).toBeCloseTo(0.01)
    expect(quantile(undefined, buckets([50, 50, 0, 0]), 0.75)).toBeCloseTo(0.055)
    expect(quantile(undefined, buckets([50, 50, 0, 0]), 0.99)).toBeCloseTo(0.0982)
  })

  it("counts only what happened between two samples", () => {
    const before = buckets([1000, 0, 0, 0])
    const after = buckets([1000, 0, 10, 0])
    expect(quantile(before, after, 0.5)).toBeCloseTo(0.55)
  })

  it("is null without observations, and the open bucket's lower bound beyond the last bound", () => {
    expect(quantile(buckets([5, 0, 0, 0]), buckets([5, 0, 0, 0]), 0.5)).toBeNull()
    expect(quantile(undefined, [], 0.5)).toBeNull()
    expect(quantile(undefined, buckets([0, 0, 0, 4]), 0.99)).toBe(1)
  })
})
