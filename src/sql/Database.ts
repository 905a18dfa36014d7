import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import { runMigrations } from "./migrations.js"
import { startEmbeddedPostgres } from "./EmbeddedPostgres.js"
import { positiveInteger } from "../Settings.js"
import { StartupFailure } from "../StartupFailure.js"

/**
 * The database URL: `DATABASE_URL` when set, otherwise an embedded PostgreSQL of our own with
 * its files under `DATA_DIR` (default `.data/`), started here and stopped with the scope.
 */
const databaseUrl = Effect.gen(function*() {
  const configured = yield* Config.option(Config.redacted("DATABASE_URL"))
  if (Option.isSome(configured) && Redacted.value(configured.value) !== "") return configured.value
  const dataDir = yield* Config.string("DATA_DIR").pipe(Config.withDefault(".data"))
  const server = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startEmbeddedPostgres({ dataDir }),
      catch: (cause) =>
        new StartupFailure({
          message: `the embedded database in ${dataDir} did not start: ${
            cause instanceof Error ? cause.message : String(cause)
          } (or set DATABASE_URL to use another PostgreSQL)`
        })
    }),
    (server) => Effect.promise(() => server.stop())
  )
  yield* Effect.logInfo("embedded PostgreSQL started").pipe(
    Effect.annotateLogs({ dataDir, port: server.port })
  )
  return Redacted.make(server.url)
}).pipe(Effect.withSpan("Database.url"))

/** `PgClient` + `SqlClient` for a given URL, with the schema migrated before anything uses it. */
export const layerFromUrl = (url: Redacted.Redacted) =>
  Layer.effectDiscard(runMigrations.pipe(Effect.orDie)).pipe(
    Layer.provideMerge(
      Layer.unwrapEffect(
        Effect.gen(function*() {
          const maxConnections = yield* positiveInteger("DATABASE_POOL_SIZE", 20)
          return PgClient.layer({
            url,
            maxConnections,
            applicationName: "ticketoverflow",
            // bigint and numeric stay strings unless a query casts them; counts are cast to int.
            transformJson: false
          }).pipe(
            Layer.catchAll((error) =>
              Layer.fail(
                error._tag === "SqlError"
                  ? new StartupFailure({ message: `cannot reach the database at ${where(url)}: ${reason(error)}` })
                  : error
              )
            )
          )
        })
      )
    )
  )

/** Host, port and database of a URL, without its password. */
const where = (url: Redacted.Redacted) => {
  try {
    const parsed = new URL(Redacted.value(url))
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`
  } catch {
    return "DATABASE_URL (not a valid URL)"
  }
}

const reason = (error: { readonly cause?: unknown; readonly message?: string }) =>
  error.cause instanceof Error ? error.cause.message : String(error.message)

export const DatabaseLive = Layer.unwrapScoped(Effect.map(databaseUrl, layerFromUrl))
