import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Config, Effect, Layer, Option, Redacted } from "effect"
import Pg from "pg"
import { runMigrations } from "./migrations.js"
import { MainDatabase, runDirectoryMigrations } from "./Organisers.js"
import { startEmbeddedPostgres } from "./EmbeddedPostgres.js"
import { PreparingClient } from "./Prepared.js"
import { databaseSessionName, positiveInteger, withoutSessionName } from "../Settings.js"
import { StartupFailure } from "../StartupFailure.js"
import { withSpan } from "../Spans.js"

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
}).pipe(withSpan("Database.url"))

/** The connection pool's occupancy, for `/metrics`: in use, idle, waiting for one, and its size. */
export class DatabasePool extends Context.Tag("DatabasePool")<DatabasePool, {
  readonly stats: () => { readonly inUse: number; readonly idle: number; readonly waiting: number; readonly max: number }
}>() {}

/**
 * The pool itself: ours, so that its occupancy can be read; closed with the scope. The first
 * query is outside the acquisition, so that its timeout (and a SIGTERM) can cut it short.
 */
const pool = (url: Redacted.Redacted, max: number, applicationName: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new Pg.Pool({
        connectionString: withoutSessionName(Redacted.value(url)),
        max,
        application_name: applicationName,
        Client: PreparingClient
      })
      // A connection that breaks while idle is replaced on next use; its error is not ours to throw.
      pool.on("error", () => {})
      return pool
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))
  ).pipe(
    Effect.tap((pool) =>
      Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
      }).pipe(
        Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        })
      )
    )
  )

/**
 * `PgClient` + `SqlClient` for a given URL, and the same as the `MainDatabase` (the directory
 * of organisers), with the schema migrated before anything uses it.
 */
export const layerFromUrl = (url: Redacted.Redacted) =>
  Layer.effectDiscard(Effect.zipRight(runMigrations, runDirectoryMigrations).pipe(Effect.orDie)).pipe(
    Layer.provideMerge(Layer.effect(MainDatabase, Effect.map(PgClient.PgClient, (client) => ({ client, url })))),
    Layer.provideMerge(
      Layer.unwrapScoped(
        Effect.gen(function*() {
          const maxConnections = yield* positiveInteger("DATABASE_POOL_SIZE", 20)
          const opened = yield* pool(url, maxConnections, yield* databaseSessionName).pipe(
            Effect.mapError((error) =>
              new StartupFailure({ message: `cannot reach the database at ${where(url)}: ${reason(error)}` })
            )
          )
          return Layer.merge(
            // bigint and numeric stay strings unless a query casts them; counts are cast to int.
            PgClient.layerFromPool({ acquire: Effect.succeed(opened), transformJson: false }).pipe(Layer.orDie),
            Layer.succeed(DatabasePool, {
              stats: () => ({
                inUse: opened.totalCount - opened.idleCount,
                idle: opened.idleCount,
                waiting: opened.waitingCount,
                max: maxConnections
              })
            })
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
