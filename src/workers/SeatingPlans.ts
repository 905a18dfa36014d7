/**
 * Seating plans. `SeatingSweep` keeps them fresh in the background (a worker, not in a process
 * that only serves HTTP): every `SEATING_REFRESH` (1 s) it asks the database for the plans
 * that are missing or behind the journal (seats sold, details changed), most urgent first, and
 * renders them in the worker pool. A concert has at most one render in flight and the next
 * sweep as its one pending refresh, however fast it sells. A sweep renders for at most a
 * second, then rests until the next: a new concert's first plan never waits behind a backlog
 * of large ones. Redrawing plans that are only behind on seats takes at most
 * `SEATING_REDRAW_SHARE` (a fifth) of the render threads' time.
 *
 * Plans are stored gzipped in PostgreSQL (they survive restarts) with a strong ETag of the
 * concert version and seat count they show. `SeatingPlans` serves them: it asks the database
 * which plan is current (its ETag: whoever rendered it) and keeps the current plan of the
 * concerts most recently read, up to `SEATING_CACHE_MB` of gzip, and the plain SVG of those
 * recently served uncompressed, up to a quarter as much: every reader of one plan shares one
 * inflated copy, made once, and all uncompressed answers together are written at most
 * `SEATING_PLAIN_MB_PER_SECOND`. A redrawn plan takes its concert's place in both.
 */
import { Config, Deferred, Effect, Exit, FiberId, Layer, Option, RateLimiter, Schedule, Stream } from "effect"
import * as zlib from "node:zlib"
import { type StalePlan, SeatingPlansRepo, type StoredPlan } from "../sql/SeatingPlansRepo.js"
import { positiveInteger } from "../Settings.js"
import { Ownership } from "../actors/Ownership.js"
import { latestChange } from "../actors/ChangeSpans.js"
import * as Metrics from "../Metrics.js"
import { Renderer } from "./Renderer.js"
import { CurrentOrganiser, organiserOf } from "../domain/Organiser.js"
import { Background, OrganiserDatabases } from "../sql/Organisers.js"
import { withSpan } from "../Spans.js"

/** A map that keeps its most recently used entries up to a total size. */
export class Lru<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly size: number }>()
  private total = 0
  constructor(private readonly budget: number) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.value
  }

  set(key: string, value: V, size: number): void {
    const old = this.entries.get(key)
    if (old !== undefined) {
      this.total -= old.size
      this.entries.delete(key)
    }
    this.entries.set(key, { value, size })
    this.total += size
    for (const [oldest, entry] of this.entries) {
      if (this.total <= this.budget || oldest === key) break
      this.entries.delete(oldest)
      this.total -= entry.size
    }
  }

  /** The total size of the entries kept. */
  get size(): number {
    return this.total
  }
}

/**
 * Decompressed on libuv's thread pool, not on the event loop, in one piece: with zlib's default
 * 16 KiB chunks a 6.6 MB plan took 400 trips through a busy event loop (20 s under load). The
 * gzip trailer's last four bytes give the size (modulo 2^32; plans are far smaller).
 */
const gunzip = (data: Uint8Array) =>
  Effect.async<Uint8Array>((resume) => {
    const size = data.length >= 4 ? Buffer.from(data.buffer, data.byteOffset, data.length).readUInt32LE(data.length - 4) : 0
    const chunkSize = Math.min(Math.max(size, 64 * 1024), 256 * 1024 * 1024)
    zlib.gunzip(data, { chunkSize }, (error, result) => resume(error === null ? Effect.succeed(result) : Effect.die(error)))
  })

/** The pieces an uncompressed plan is written in, each taken from the byte budget. */
const plainChunk = 256 * 1024

/** How long a sweep renders before it rests until the next one. */
const sweepSlice = 1000

/** How often a sweep, while it renders, looks again for concerts created since it began. */
const freshLookEvery = 250

export class SeatingPlans extends Effect.Service<SeatingPlans>()("SeatingPlans", {
  dependencies: [SeatingPlansRepo.Default],
  scoped: Effect.gen(function*() {
    const repo = yield* SeatingPlansRepo
    const cacheBytes = (yield* positiveInteger("SEATING_CACHE_MB", 64)) * 1024 * 1024
    /**
     * The stored plan of each concert, as last read: one entry per concert, so a redrawn plan
     * takes the place of the one it replaces (keyed by concert and ETag, superseded plans stayed
     * until the budget pushed them out, and a selling tour filled it with versions nobody would
     * be served again). With it, the number of the read that fetched it: a read started later
     * sees the same plan or a newer one, so a read finishing late never puts the older one back.
     */
    const plans = new Lru<{ readonly plan: StoredPlan; readonly read: number }>(cacheBytes)
    let reads = 0
    // A plain plan is 20 times its gzip, and all of them together are written at most
    // SEATING_PLAIN_MB_PER_SECOND (16): a budget as large as the gzip one (64 MB, seven plans of
    // 150,000 seats) held about four seconds of writing in memory for clients that rarely exist.
    /** The plain SVG of each concert's plan, with the ETag it was inflated from. */
    const inflated = new Lru<{ readonly etag: string; readonly svg: Uint8Array }>(cacheBytes / 4)
    const cacheGauge = {
      gzip: Metrics.labelled(Metrics.seatingCacheBytes, { kind: "gzip" }),
      plain: Metrics.labelled(Metrics.seatingCacheBytes, { kind: "plain" })
    }
    /** Inflates in progress, by concert and ETag: concurrent readers of one plan wait for the same one. */
    const inflating = new Map<string, Deferred.Deferred<Uint8Array>>()
    // Uncompressed plans are 8.5 MB each at 150,000 seats: writing them costs the event loop
    // per byte, so readers share a budget of bytes per second (64 readers looping over one
    // took buyers from 936 to 286 purchases a second).
    const plainMegabytesPerSecond = yield* positiveInteger("SEATING_PLAIN_MB_PER_SECOND", 16)
    const plainBudget = yield* RateLimiter.make({
      limit: Math.max(1, Math.round((plainMegabytesPerSecond * 1024 * 1024) / plainChunk)),
      interval: "1 second",
      algorithm: "token-bucket"
    })

    return {
      /** The current plan of a concert, if one was rendered yet. */
      latest: (concertId: string): Effect.Effect<Option.Option<StoredPlan>> =>
        Effect.flatMap(repo.etag(concertId), (etag) => {
          if (Option.isNone(etag)) return Effect.succeed(Option.none())
          const cached = plans.get(concertId)
          if (cached !== undefined && cached.plan.etag === etag.value) return Effect.succeed(Option.some(cached.plan))
          const read = ++reads
          return Effect.tap(repo.find(concertId), (found) =>
            Effect.sync(() => {
              if (Option.isNone(found)) return
              const kept = plans.get(concertId)
              if (kept !== undefined && kept.read > read) return
              plans.set(concertId, { plan: found.value, read }, found.value.gzip.length)
              cacheGauge.gzip.unsafeUpdate(plans.size, [])
            }))
        }),
      /** The plain SVG of a plan, written a piece at a time within the shared byte budget. */
      paced: (svg: Uint8Array): Stream.Stream<Uint8Array> =>
        Stream.range(0, Math.ceil(svg.length / plainChunk) - 1).pipe(
          Stream.mapEffect((i) => plainBudget(Effect.sync(() => svg.subarray(i * plainChunk, (i + 1) * plainChunk))))
        ),
      /** The plain SVG of a concert's stored plan, shared by everyone who asks for it. */
      svg: (concertId: string, plan: StoredPlan): Effect.Effect<Uint8Array> =>
        Effect.suspend(() => {
          const done = inflated.get(concertId)
          if (done !== undefined && done.etag === plan.etag) return Effect.succeed(done.svg)
          const key = `${concertId} ${plan.etag}`
          const pending = inflating.get(key)
          if (pending !== undefined) return Deferred.await(pending)
          const deferred = Deferred.unsafeMake<Uint8Array>(FiberId.none)
          inflating.set(key, deferred)
          return gunzip(plan.gzip).pipe(
            Effect.tap((svg) =>
              Effect.sync(() => {
                // Kept only while it is the concert's current plan as last read: a reader still
                // holding the plan before a redraw gets its SVG without taking the new one's place.
                const current = plans.get(concertId)
                if (current !== undefined && current.plan.etag !== plan.etag) return
                inflated.set(concertId, { etag: plan.etag, svg }, svg.length)
                cacheGauge.plain.unsafeUpdate(inflated.size, [])
              })
            ),
            Effect.onExit((exit) =>
              Effect.sync(() => {
                inflating.delete(key)
                Deferred.unsafeDone(deferred, Exit.isSuccess(exit) ? exit : Exit.die("the plan could not be inflated"))
              })
            ),
            Effect.uninterruptible
          )
        })
    } as const
  })
}) {}

/** Renders stale plans in the background, in the render workers; see the top of this module. */
export const SeatingSweep = Layer.scopedDiscard(
  Effect.gen(function*() {
    const repo = yield* SeatingPlansRepo
    const renderer = yield* Renderer
    const ownership = yield* Ownership
    const organisers = yield* OrganiserDatabases
    const interval = yield* Config.duration("SEATING_REFRESH").pipe(Config.withDefault("1 second"))
    const share = yield* Config.number("SEATING_REDRAW_SHARE").pipe(
      Config.validate({ message: "must be a number above 0 and at most 1", validation: (n) => n > 0 && n <= 1 }),
      Config.withDefault(0.2)
    )

    /**
     * When the last sweep looked (for any plan, or for plans behind on seats too), the
     * organisers with plans behind then, and until when redraws rest.
     */
    let lastLook = 0
    let lastFullLook = 0
    let stillBehindIn = new Set<number>()
    let restUntil = 0
    /** When each concert's plan was first seen behind the journal, until it is rendered. */
    const behindSince = new Map<string, number>()

    const render = (plan: StalePlan) =>
      repo.seats(plan.concertId).pipe(
        Effect.flatMap(({ held, sold }) => renderer.seating({ ...plan, purchased: sold.length, sold, held })),
        Effect.flatMap((gzip) => repo.store(plan, `"${plan.version}-${plan.purchased}-${plan.seatChanges}"`, gzip)),
        Effect.tap(() =>
          Effect.sync(() => {
            behindSince.delete(plan.concertId)
            Metrics.seatingRenders.unsafeUpdate(1, [])
          })
        ),
        Effect.zipRight(
          Effect.logDebug("seating plan rendered").pipe(
            Effect.annotateLogs({ concertId: plan.concertId, capacity: plan.capacity, seatChanges: plan.seatChanges })
          )
        ),
        Effect.catchAll((error) =>
          Effect.logError("seating plan render failed").pipe(
            Effect.annotateLogs({ concertId: plan.concertId, error: String(error) })
          )
        ),
        // A trace of its own, linked to the latest seat change it shows (and so to its buyers).
        withSpan("SeatingPlans.render", {
          root: true,
          captureStackTrace: false,
          attributes: { concertId: plan.concertId, capacity: plan.capacity, seatChanges: plan.seatChanges },
          links: Option.match(Option.fromNullable(latestChange(plan.concertId)), {
            onNone: () => [],
            onSome: (span) => [{ _tag: "SpanLink" as const, span, attributes: {} }]
          })
        }),
        // In the database of the concert's organiser, which its id names.
        Effect.locally(CurrentOrganiser, organiserOf(plan.concertId)),
        Effect.locally(Background, true)
      )

    /**
     * Renders the most urgent plans for at most `sweepSlice`, then rests until the next sweep,
     * and a concert created meanwhile comes first in the next sweep. Plans only behind on seats
     * (a selling concert's) are redrawn within `SEATING_REDRAW_SHARE` of the render threads'
     * time: after redraws that took t, the sweeps rest from them for t × (1 / share − 1) and look
     * only for new and changed concerts, whose plans never wait. Under a sale that keeps every
     * plan behind, redrawing them all every second took half the render threads and a tenth
     * of the purchases on two cores; a plan may lag by 3 minutes.
     */
    const sweep: Effect.Effect<void> = Effect.gen(function*() {
      // This process's concerts only: each plan is drawn by the runner that owns its concert.
      const wanted = renderer.size * 8
      const seats = Date.now() >= restUntil
      // In the organisers' databases used here since the last look of this kind (a plan falls
      // behind when its concert sells or changes), and in those that still had plans behind.
      const found: Array<ReadonlyArray<StalePlan>> = []
      const since = (seats ? lastFullLook : lastLook) - 1000
      const previousFullLook = lastFullLook
      lastLook = Date.now()
      if (seats) lastFullLook = lastLook
      yield* organisers.forEach(
        { since, also: stillBehindIn },
        () => Effect.map(repo.stale(wanted * 4, { seats }), (plans) => void found.push(plans))
      )
      const owned = found.map((plans) => plans.filter((plan) => ownership.owns(plan.concertId)))
      const behind = owned.flat()
      const started = Date.now()
      // What is behind, and since when, as a look at every kind of plan sees it. A plan first
      // seen behind on seats fell behind after the previous such look, which may be a rest ago:
      // it counts from then, so a rest shows in the lag, never hides it.
      if (seats) {
        stillBehindIn = new Set(behind.map((plan) => organiserOf(plan.concertId)))
        const stillBehind = new Set(behind.map((plan) => plan.concertId))
        for (const concertId of behindSince.keys()) if (!stillBehind.has(concertId)) behindSince.delete(concertId)
        for (const plan of behind) {
          if (behindSince.has(plan.concertId)) continue
          behindSince.set(plan.concertId, plan.redraw && previousFullLook > 0 ? Math.min(previousFullLook, started) : started)
        }
      }
      // Every sweep, from what is still behind (a render takes its concert out).
      let oldest = started
      for (const at of behindSince.values()) if (at < oldest) oldest = at
      Metrics.seatingBehind.unsafeUpdate(behindSince.size, [])
      Metrics.seatingLag.unsafeUpdate((started - oldest) / 1000, [])
      // New and changed concerts' plans first, smallest first, whichever organiser's; then the
      // redraws, taking each organiser's most behind in turn, so that one organiser's many
      // selling concerts do not keep another's from the batch.
      const fresh = behind.filter((plan) => !plan.redraw).sort((a, b) => a.capacity - b.capacity)
      const redraws = owned.map((plans) => plans.filter((plan) => plan.redraw))
      const turns: Array<StalePlan> = []
      for (let i = 0; turns.length < wanted && redraws.some((plans) => i < plans.length); i++) {
        for (const plans of redraws) if (i < plans.length) turns.push(plans[i]!)
      }
      const batch = [...fresh, ...turns].slice(0, wanted)
      let next = 0
      let redrawing = 0
      // A concert created while this sweep renders would wait for the slice's end and the rest
      // after it. Looks for new concerts every `freshLookEvery` (between renders, and as the
      // slice ends) put those smaller than every new plan of this batch (they would have come
      // first) ahead of what is left. Within the slice's second, and after it one plan for each
      // render thread: a flood of new concerts still waits out the rests.
      const taken = new Set(batch.map((plan) => plan.concertId))
      const smallest = batch.reduce((least, plan) => plan.redraw ? least : Math.min(least, plan.capacity), Infinity)
      const jumped = new Set<string>()
      let freshLookAt = started
      let looking = false
      const lookAgain = Effect.suspend(() => {
        if (looking || Date.now() - freshLookAt < freshLookEvery) return Effect.void
        looking = true
        const since = freshLookAt - 1000
        freshLookAt = Date.now()
        const found: Array<StalePlan> = []
        return organisers.forEach(
          { since },
          () => Effect.map(repo.stale(wanted, { seats: false }), (plans) => void found.push(...plans))
        ).pipe(
          Effect.map(() => {
            const sooner = found
              .filter((plan) =>
                !plan.redraw && plan.capacity < smallest && !taken.has(plan.concertId) && ownership.owns(plan.concertId)
              )
              .sort((a, b) => a.capacity - b.capacity)
            for (const plan of sooner) {
              taken.add(plan.concertId)
              jumped.add(plan.concertId)
            }
            batch.splice(next, 0, ...sooner)
          }),
          Effect.ensuring(Effect.sync(() => {
            looking = false
          }))
        )
      })
      const timed = (plan: StalePlan) =>
        Effect.suspend(() => {
          const from = Date.now()
          return Effect.ensuring(
            render(plan),
            Effect.sync(() => {
              if (plan.redraw) redrawing += Date.now() - from
            })
          )
        })
      // One concert a worker at a time; a worker takes the next plan until the slice is over.
      yield* Effect.forEach(
        Array.from({ length: renderer.size }),
        () =>
          Effect.whileLoop({
            while: () => next < batch.length && Date.now() - started < sweepSlice,
            body: () =>
              Effect.zipRight(
                lookAgain,
                Effect.suspend(() => next < batch.length ? timed(batch[next++]!) : Effect.void)
              ),
            step: () => undefined
          }),
        { concurrency: "unbounded", discard: true }
      )
      // Concerts created during the slice's last render go now, not after the rest: one for
      // each render thread at most, so that a flood of them still waits out its rests.
      yield* lookAgain
      const late = batch.slice(next).filter((plan) => jumped.has(plan.concertId)).slice(0, renderer.size)
      next = batch.length
      yield* Effect.forEach(late, timed, { concurrency: renderer.size, discard: true })
      if (redrawing > 0) restUntil = Date.now() + (redrawing / renderer.size) * (1 / share - 1)
    }).pipe(withSpan("SeatingSweep.sweep", { captureStackTrace: false }))

    yield* sweep.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("seating sweep failed", cause)),
      Effect.repeat(Schedule.spaced(interval)),
      Effect.forkScoped
    )
  })
)
