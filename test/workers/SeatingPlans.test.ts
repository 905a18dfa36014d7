import { expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as zlib from "node:zlib"
import { ConcertsRepo } from "../../src/sql/ConcertsRepo.js"
import { SeatingPlansRepo } from "../../src/sql/SeatingPlansRepo.js"
import { Renderer } from "../../src/workers/Renderer.js"
import { Lru, SeatingPlans, SeatingSweep } from "../../src/workers/SeatingPlans.js"
import { TestDatabase } from "../fixtures/Database.js"
import { Ownership } from "../../src/actors/Ownership.js"

const Plans = Layer.mergeAll(SeatingPlans.Default, SeatingSweep, ConcertsRepo.Default).pipe(
  Layer.provideMerge(Layer.mergeAll(SeatingPlansRepo.Default, Renderer.Live, Ownership.Everything)),
  Layer.provideMerge(TestDatabase)
)

const create = (capacity: number, name = "Plan") =>
  Effect.flatMap(ConcertsRepo, (repo) => repo.create({ name, venue: "Hall", date: "2027-03-04", capacity, status: "ACTIVE" }))

const planOf = (concertId: string) =>
  Effect.flatMap(SeatingPlans, (plans) => plans.latest(concertId))

it("the LRU keeps the most recently used entries within its budget", () => {
  const lru = new Lru<string>(10)
  lru.set("a", "A", 4)
  lru.set("b", "B", 4)
  expect(lru.get("a")).toBe("A") // a is now the most recent
  lru.set("c", "C", 4) // over budget: b, the least recent, goes
  expect(lru.get("b")).toBeUndefined()
  expect([lru.get("a"), lru.get("c")]).toEqual(["A", "C"])
  lru.set("huge", "H", 100) // larger than the budget: kept alone
  expect([lru.get("a"), lru.get("c"), lru.get("huge")]).toEqual([undefined, undefined, "H"])
})

layer(Plans, { excludeTestServices: true, timeout: "120 seconds" })("seating plans", (it) => {
  it.effect("a new small concert's first plan comes while a backlog of huge renders waits", () =>
    Effect.gen(function*() {
      const plans = yield* SeatingPlans
      yield* Effect.forEach(Array.from({ length: 40 }), (_, i) => create(150_000, `Stadium ${i}`), { concurrency: 8 })
      // Let the sweep get busy with the huge ones.
      yield* Effect.sleep("1500 millis")
      const small = yield* create(20, "Club night")
      const started = Date.now()
      let plan = yield* plans.latest(small.id)
      while (Option.isNone(plan) && Date.now() - started < 30_000) {
        yield* Effect.sleep("50 millis")
        plan = yield* plans.latest(small.id)
      }
      const waited = Date.now() - started
      expect(Option.isSome(plan)).toBe(true)
      // Well within the spec's 3 minutes; the target is 2 s, and the test leaves room for a busy machine.
      expect(waited).toBeLessThan(4000)
      const repo = yield* SeatingPlansRepo
      // The backlog was real: most huge plans were still to render when the small one came.
      expect((yield* repo.stale(100)).length).toBeGreaterThan(20)
    }))

  it.effect("readers of one plan without gzip share one inflated copy", () =>
    Effect.gen(function*() {
      const plans = yield* SeatingPlans
      const concert = yield* create(2000, "Shared")
      let plan = yield* planOf(concert.id)
      while (Option.isNone(plan)) {
        yield* Effect.sleep("50 millis")
        plan = yield* planOf(concert.id)
      }
      const stored = plan.value
      const copies = yield* Effect.all(Array.from({ length: 50 }, () => plans.svg(concert.id, stored)), { concurrency: "unbounded" })
      expect(new Set(copies).size).toBe(1)
      expect(Buffer.from(copies[0]!).equals(zlib.gunzipSync(stored.gzip))).toBe(true)
      expect(yield* plans.svg(concert.id, stored)).toBe(copies[0])
    }))
})
