/**
 * One line when the database stops answering and one when it is back, with how long it was
 * away: what an operator needs from an outage, instead of every failed query's trace. Lost
 * means three probes in a row failed: one slow answer under load is not an outage.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Duration, Effect, Layer, Schedule } from "effect"

export const DatabaseMonitorLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    let lostAt: number | undefined
    let failures = 0
    let failingSince = 0
    const probe = sql`SELECT 1`.pipe(
      Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "no answer within 2 seconds" }),
      Effect.matchEffect({
        onFailure: (error) =>
          Effect.gen(function*() {
            failures += 1
            if (failures === 1) failingSince = yield* Clock.currentTimeMillis
            if (lostAt !== undefined || failures < 3) return
            lostAt = failingSince
            yield* Effect.logError("database lost").pipe(
              Effect.annotateLogs({ reason: typeof error === "string" ? error : String(error.cause ?? error.message) })
            )
          }),
        onSuccess: () =>
          Effect.gen(function*() {
            failures = 0
            if (lostAt === undefined) return
            const awayFor = Duration.millis((yield* Clock.currentTimeMillis) - lostAt)
            lostAt = undefined
            yield* Effect.logInfo("database back").pipe(Effect.annotateLogs({ awayFor: Duration.format(awayFor) }))
          })
      })
    )
    yield* Effect.forkScoped(Effect.repeat(probe, Schedule.spaced("1 second")))
  })
)
