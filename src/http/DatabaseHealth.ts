import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { Health as HealthBody } from "../domain/Api.js"
import { DatabaseUnavailable } from "../domain/Errors.js"
import { withSpan } from "../Spans.js"

/** Healthy while the database answers within two seconds. */
export class DatabaseHealth extends Effect.Service<DatabaseHealth>()("DatabaseHealth", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return {
      // A failed or slow query is the database not answering; a defect or an interruption is
      // not, and goes on as what it is.
      check: sql`SELECT 1`.pipe(
        Effect.timeout("2 seconds"),
        Effect.as(new HealthBody({ status: "healthy", database: "up" })),
        Effect.catchAll(() => Effect.fail(DatabaseUnavailable.of())),
        withSpan("DatabaseHealth.check")
      )
    } as const
  })
}) {}
