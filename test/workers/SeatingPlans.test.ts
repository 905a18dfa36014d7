import { expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Metric, Option } from "effect"
import * as Metrics from "../../src/Metrics.js"
import * as SqlClient from "@effect/sql/SqlClient"
import * as zlib from "node:zlib"
import { ConcertsRepo } from "../../src/sql/ConcertsRepo.js"
import { SeatingPlansRepo } from "../../src/sql/SeatingPlansRepo.js"
import { Renderer } from "../../src/workers/Renderer.js"
import { Lru, SeatingPlans, SeatingSweep } from "../../src/workers/SeatingPlans.js"
import { renderSeatingBytes } from "../../src/workers/SeatingSvg.js"
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

/** Polls until `f` holds, for at most `within`; the last value either way. */
const until = <A, R>(get: Effect.Effect<A, never, R>, f: (a: A) => boolean, within: Duration.DurationInput) =>
  Effect.gen(function*() {
    const end = Date.now() + Duration.toMillis(within)
    let value = yield* get
    while (!f(value) && Date.now() < end) {
      yield* Effect.sleep("50 millis")
      value = yield* get
    }
    return value
  })

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

/** The plans and their sweeps, the sweeps with `settings` over the environment's. */
const sweepingWith = (settings: Record<string, string>) =>
  Layer.mergeAll(
    SeatingPlans.Default,
    SeatingSweep.pipe(Layer.provide(Layer.setConfigProvider(
      ConfigProvider.fromMap(new Map(Object.entries(settings))).pipe(ConfigProvider.orElse(() => ConfigProvider.fromEnv()))
    ))),
    ConcertsRepo.Default
  ).pipe(
    Layer.provideMerge(Layer.mergeAll(SeatingPlansRepo.Default, Renderer.Live, Ownership.Everything)),
    Layer.provideMerge(TestDatabase)
  )

/** The same, with redraws given a hundredth of the render threads' time. */
const Resting = sweepingWith({ SEATING_REDRAW_SHARE: "0.01" })

layer(Resting, { excludeTestServices: true, timeout: "120 seconds" })("seating plans, redrawn within their share", (it) => {
  it.effect("a plan only behind on seats waits out its rest after a redraw; a new concert's first plan does not wait", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const repo = yield* SeatingPlansRepo
      const arena = yield* create(150_000, "Arena")
      const sell = (from: number, count: number) =>
        sql`INSERT INTO tickets (id, concert_id, capacity, seat_no, user_id)
            SELECT gen_random_uuid(), ${arena.id}, 150000, s, 'buyer' FROM generate_series(${from}::int, ${from + count - 1}::int) s`.pipe(Effect.orDie)
      // The ETag says which count a plan shows: "<version>-<purchased>-<seat changes>".
      const shown = Effect.map(repo.etag(arena.id), Option.map((etag) => Number(etag.split("-")[1])))
      const showing = (n: number) => (plan: Option.Option<number>) => Option.contains(plan, n)

      expect(yield* until(shown, showing(0), "30 seconds")).toEqual(Option.some(0))
      // The first redraw comes at the next sweep (no redraw yet to rest from).
      yield* sell(1, 10)
      expect(yield* until(shown, showing(10), "10 seconds")).toEqual(Option.some(10))

      // Behind again, and resting: 99 times what that redraw took.
      yield* sell(11, 10)
      const club = yield* create(20, "Club")
      const asked = Date.now()
      const clubPlan = yield* until(repo.etag(club.id), Option.isSome, "10 seconds")
      expect(Option.isSome(clubPlan)).toBe(true)
      expect(Date.now() - asked).toBeLessThan(4000)
      // The new concert's plan came; the arena's redraw still waits, sweep after sweep.
      yield* Effect.sleep("3 seconds")
      expect(yield* shown).toEqual(Option.some(10))
      expect((yield* repo.stale(10, { seats: false })).map((plan) => plan.concertId)).not.toContain(arena.id)
      expect((yield* repo.stale(10)).find((plan) => plan.concertId === arena.id)?.redraw).toBe(true)
      // And comes after its rest, with the rest counted in the plans' lag (watched meanwhile).
      let lag = 0
      const watched = Effect.zipLeft(shown, Effect.map(Metric.value(Metrics.seatingLag), (gauge) => void (lag = Math.max(lag, gauge.value))))
      expect(yield* until(watched, showing(20), "90 seconds")).toEqual(Option.some(20))
      expect(lag).toBeGreaterThanOrEqual(Math.floor((Date.now() - asked) / 1000) - 2)
    }))
})

/** The caches alone: plans stored here, no sweep drawing its own. */
const Cached = Layer.mergeAll(SeatingPlans.Default, ConcertsRepo.Default).pipe(
  Layer.provideMerge(SeatingPlansRepo.Default),
  Layer.provideMerge(TestDatabase)
)

layer(Cached, { excludeTestServices: true, timeout: "60 seconds" })("seating plan caches", (it) => {
  it.effect("a newer plan takes its concert's place in the caches; a reader of the older one does not put it back", () =>
    Effect.gen(function*() {
      const plans = yield* SeatingPlans
      const repo = yield* SeatingPlansRepo
      const cached = (kind: "gzip" | "plain") =>
        Effect.map(Metric.value(Metrics.labelled(Metrics.seatingCacheBytes, { kind })), (gauge) => gauge.value)
      const concert = yield* create(3000, "Redrawn")
      const missing = (yield* repo.stale(10)).find((plan) => plan.concertId === concert.id)!
      const drawn = (purchased: number) =>
        zlib.gzipSync(renderSeatingBytes({ concertId: concert.id, name: "Redrawn", venue: "Hall", capacity: 3000, purchased }))

      yield* repo.store(missing, "v1", drawn(0))
      const first = Option.getOrThrow(yield* planOf(concert.id))
      const firstSvg = yield* plans.svg(concert.id, first)
      expect(first.etag).toBe("v1")
      expect([yield* cached("gzip"), yield* cached("plain")]).toEqual([first.gzip.length, firstSvg.length])

      yield* repo.store({ ...missing, purchased: 500 }, "v2", drawn(500))
      const second = Option.getOrThrow(yield* planOf(concert.id))
      const secondSvg = yield* plans.svg(concert.id, second)
      expect(second.etag).toBe("v2")
      // The second plan's bytes replaced the first's, rather than joining them.
      expect([yield* cached("gzip"), yield* cached("plain")]).toEqual([second.gzip.length, secondSvg.length])

      // A reader who got the first plan before the redraw still gets its SVG, and the second
      // stays in its place.
      const late = yield* plans.svg(concert.id, first)
      expect(Buffer.from(late).equals(Buffer.from(firstSvg))).toBe(true)
      expect(yield* plans.svg(concert.id, second)).toBe(secondSvg)
      expect(yield* cached("plain")).toBe(secondSvg.length)
    }))
})

/** The same, resting 8 s between sweeps: far longer than a slice and a render together. */
const LongRests = sweepingWith({ SEATING_REFRESH: "8 seconds" })

layer(LongRests, { excludeTestServices: true, timeout: "120 seconds" })("seating plans, long rests", (it) => {
  it.effect("a concert created while a sweep renders gets its plan from that sweep, not after the rest", () =>
    Effect.gen(function*() {
      const behind = Effect.map(Metric.value(Metrics.seatingBehind), (gauge) => gauge.value)
      // The first sweep, on an empty database, has nothing behind.
      expect(yield* until(behind, (n) => n === 0, "10 seconds")).toBe(0)
      yield* Effect.forEach(Array.from({ length: 40 }), (_, i) => create(150_000, `Arena ${i}`), { concurrency: 8 })
      // A sweep has seen them: its first render (which starts the render thread) is under way.
      expect(yield* until(behind, (n) => n > 0, "30 seconds")).toBeGreaterThan(0)
      const small = yield* create(20, "Club night")
      const started = Date.now()
      const plan = yield* until(planOf(small.id), Option.isSome, "30 seconds")
      expect(Option.isSome(plan)).toBe(true)
      // At the next sweep it would come after the 8 s rest; it comes from this one.
      expect(Date.now() - started).toBeLessThan(6000)
    }))
})
