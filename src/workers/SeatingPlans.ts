/**
 * Seating plans, kept fresh in the background: every `SEATING_REFRESH` (1 s) one sweep finds
 * the concerts whose plan is missing or behind the journal (seats sold, details changed) and
 * renders each in the worker pool, one concert at a time. A concert therefore has at most one
 * render in flight and the next sweep as its one pending refresh, however fast it sells.
 * Plans are stored gzipped in PostgreSQL (they survive restarts) and kept here for serving,
 * with a strong ETag of the concert version and seat count they show.
 */
import { Config, Effect, Option, Schedule } from "effect"
import { SeatingPlansRepo, type StoredPlan } from "../sql/SeatingPlansRepo.js"
import { Renderer } from "./Renderer.js"

export class SeatingPlans extends Effect.Service<SeatingPlans>()("SeatingPlans", {
  scoped: Effect.gen(function*() {
    const repo = yield* SeatingPlansRepo
    const renderer = yield* Renderer
    const interval = yield* Config.duration("SEATING_REFRESH").pipe(Config.withDefault("1 second"))
    const cache = new Map<string, StoredPlan>()

    const sweep = repo.stale.pipe(
      Effect.flatMap(Effect.forEach((plan) =>
        renderer.seating(plan).pipe(
          Effect.flatMap((gzip) => {
            const stored = { etag: `"${plan.version}-${plan.purchased}"`, gzip }
            return Effect.as(repo.store(plan, stored.etag, gzip), stored)
          }),
          Effect.tap((stored) => Effect.sync(() => cache.set(plan.concertId, stored))),
          Effect.catchAll((error) =>
            Effect.logError("seating plan render failed").pipe(
              Effect.annotateLogs({ concertId: plan.concertId, error: String(error) })
            )
          )
        ), { discard: true })),
      Effect.withSpan("SeatingPlans.sweep", { captureStackTrace: false })
    )

    yield* sweep.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("seating sweep failed", cause)),
      Effect.repeat(Schedule.spaced(interval)),
      Effect.forkScoped
    )

    return {
      /** The latest plan of a concert, if one was rendered yet. */
      latest: (concertId: string): Effect.Effect<Option.Option<StoredPlan>> =>
        Effect.suspend(() => {
          const cached = cache.get(concertId)
          if (cached !== undefined) return Effect.succeed(Option.some(cached))
          return Effect.tap(repo.find(concertId), (found) =>
            Option.isSome(found) ? Effect.sync(() => cache.set(concertId, found.value)) : Effect.void)
        })
    } as const
  })
}) {}
