/**
 * The wake-up of each concert with something due: at its earliest hold expiry or its draw's
 * `opens_at`, the concert entity is sent `Expire`. It releases what has lapsed and runs the draw,
 * exactly once: the journal marks the concert drawn in the draw's own transaction. The entity
 * sets its own wake-up after every change (`wake`). An idle entity may be passivated meanwhile;
 * the message brings it back. On start, and whenever this process takes shards over from a
 * runner that died, every concert with something due gets a wake-up at its earliest time, so
 * what came due while nobody ran it happens at once.
 */
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardId from "@effect/cluster/ShardId"
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Context, Duration, Effect, FiberMap, Option, Schedule } from "effect"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import { positiveInteger } from "../Settings.js"
import { OrganiserDatabases } from "../sql/Organisers.js"

export class HoldTimers extends Effect.Service<HoldTimers>()("HoldTimers", {
  scoped: Effect.gen(function*() {
    // Made when first needed: a process that never holds seats never builds it.
    const sharding = yield* Effect.context<Sharding.Sharding>()
    const client = yield* Effect.cached(Effect.provide(ConcertEntity.client, sharding))
    const sql = yield* SqlClient.SqlClient
    const organisers = yield* OrganiserDatabases
    const timers = yield* FiberMap.make<string>()
    const due = new Map<string, number>()

    // Delivered however long the database or the cluster is away (backing off to every 10 s):
    // a wake-up given up would leave lapsed holds taken, or a draw not run, until some request.
    const fire = (concertId: string) =>
      Effect.flatMap(client, (client) => client(concertId).Expire()).pipe(
        Effect.retry({
          schedule: Schedule.exponential("200 millis").pipe(Schedule.upTo("10 seconds"), Schedule.andThen(Schedule.spaced("10 seconds"))),
          while: (error) => error._tag !== "ConcertNotFound"
        }),
        Effect.catchAllCause((cause) =>
          Effect.logWarning("a concert's hold expiry could not be delivered").pipe(
            Effect.annotateLogs({ concertId, cause: String(cause) })
          )
        )
      )

    /** Wake `concertId` at `at` (epoch milliseconds), or sooner if it already has an earlier wake-up. */
    const wake = (concertId: string, at: number | undefined): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (at === undefined) return
        const current = due.get(concertId)
        if (current !== undefined && current <= at) return
        due.set(concertId, at)
        const now = yield* Clock.currentTimeMillis
        yield* FiberMap.run(
          timers,
          concertId,
          Effect.sleep(Duration.millis(Math.max(0, at - now))).pipe(
            Effect.zipRight(Effect.sync(() => due.delete(concertId))),
            Effect.zipRight(fire(concertId))
          )
        )
      })

    // Catch up: every concert with live holds or a draw to run, in every organiser's database,
    // at the earliest (now, if it has passed): what came due while the service was down happens
    // as soon as it is up.
    const catchUpOne = sql<{ readonly concertId: string; readonly at: number }>`
      SELECT concert_id AS "concertId", (extract(epoch FROM min(at)) * 1000)::float8 AS at FROM (
        SELECT concert_id, expires_at AS at FROM reservations WHERE status IN ('HELD', 'AWAITING_PAYMENT')
        UNION ALL
        SELECT id, opens_at FROM concerts WHERE sale_mode = 'DRAW' AND drawn_at IS NULL AND opens_at IS NOT NULL
      ) due GROUP BY concert_id`.pipe(
      Effect.flatMap((rows) => Effect.forEach(rows, (row) => wake(row.concertId, row.at), { discard: true })),
      Effect.retry(Schedule.spaced("1 second").pipe(Schedule.upTo("1 minute"))),
      Effect.catchAllCause((cause) => Effect.logWarning("hold expiries not caught up", cause))
    )
    // Four organisers at a time: one whose database is away does not hold up the others.
    const catchUp = organisers.forEach("all", () => catchUpOne, { concurrency: 4 })
    yield* Effect.forkScoped(catchUp)

    // And again whenever this process takes shards over: the wake-ups of a runner that died
    // died with it, and its concerts are now this process's to settle.
    const shardsPerGroup = yield* positiveInteger("SHARDS_PER_GROUP", 300)
    const held = Effect.sync(() => {
      const service = Context.getOption(sharding, Sharding.Sharding)
      if (Option.isNone(service) || typeof service.value.hasShardId !== "function") return 0
      let count = 0
      for (let i = 1; i <= shardsPerGroup; i++) if (service.value.hasShardId(ShardId.make("default", i))) count++
      return count
    })
    let last = 0
    yield* held.pipe(
      Effect.flatMap((count) => {
        const gained = count > last
        last = count
        return gained ? catchUp : Effect.void
      }),
      Effect.repeat(Schedule.spaced("2 seconds")),
      Effect.forkScoped
    )

    return { wake } as const
  })
}) {}
