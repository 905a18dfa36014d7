/**
 * Which processes may share a database. A `single` process owns every concert alone: a second
 * one on the same database would look healthy while the cluster's shard locks, held by the
 * first, leave it unable to sell anything. So a `single` process claims the database
 * exclusively and `runner` processes claim it together, with a PostgreSQL advisory lock held
 * on a connection of their own for as long as they run; a process that cannot claim it does
 * not start, and says which process holds it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer } from "effect"
import * as os from "node:os"
import { StartupFailure } from "../StartupFailure.js"

/** Below 1,000,000: the cluster's own advisory locks start there. */
const lockId = 424_242

export type ClaimMode = "single" | "runner"

const describe = (mode: ClaimMode) => `ticketoverflow ${mode} pid=${process.pid} host=${os.hostname()}`.slice(0, 63)

export const DatabaseClaim = (mode: ClaimMode) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const connection = yield* sql.reserve
      const run = (statement: string, params: ReadonlyArray<unknown> = []) =>
        connection.executeUnprepared(statement, params, undefined) as Effect.Effect<
          ReadonlyArray<Record<string, unknown>>,
          SqlError
        >
      // Named apart from a runner's other sessions (`databaseSessionName`), which the other
      // runners end if it stops answering: the claim holds nothing a concert's new owner needs,
      // and must last as long as the process, through a freeze too.
      yield* run("SELECT set_config('application_name', $1, false)", [describe(mode)])
      const [claimed] = yield* run(
        mode === "single" ? "SELECT pg_try_advisory_lock($1) AS ok" : "SELECT pg_try_advisory_lock_shared($1) AS ok",
        [lockId]
      )
      if (claimed?.ok !== true) {
        const holders = yield* run(
          `SELECT a.application_name AS name, coalesce(host(a.client_addr), 'local') AS address, l.mode
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted`,
          [lockId]
        )
        const who = holders.map((h) => `${String(h.name)} (from ${String(h.address)})`).join(", ") || "another process"
        return yield* new StartupFailure({
          message: mode === "single"
            ? `this database is already in use by ${who}; a second process on one database needs ` +
              "CLUSTER_MODE=runner on every process (see README, 'Running several processes'), " +
              "or give this one its own database (DATABASE_URL or DATA_DIR)"
            : `this database is in use by ${who} in single mode; stop it and start every process ` +
              "with CLUSTER_MODE=runner"
        })
      }
      yield* Effect.addFinalizer(() =>
        run(mode === "single" ? "SELECT pg_advisory_unlock($1)" : "SELECT pg_advisory_unlock_shared($1)", [lockId]).pipe(
          Effect.zipRight(run("RESET application_name")),
          Effect.ignore
        )
      )
    }).pipe(
      Effect.catchTag("SqlError", (error) =>
        Effect.fail(new StartupFailure({ message: `could not claim the database: ${error.message}` })))
    )
  )
