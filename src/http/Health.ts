import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Health as HealthBody } from "../domain/Api.js"
import { Unavailable } from "../domain/Errors.js"

/** Healthy while the database answers within two seconds. */
export class Health extends Effect.Service<Health>()("Health", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return {
      check: sql`SELECT 1`.pipe(
        Effect.timeout("2 seconds"),
        Effect.as(new HealthBody({ status: "healthy", database: "up" })),
        Effect.catchAllCause(() => Effect.fail(new Unavailable({ message: "the database is not answering" }))),
        Effect.withSpan("Health.check")
      )
    } as const
  })
}) {}
