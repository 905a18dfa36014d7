/**
 * Where concert entities run. `CLUSTER_MODE`:
 * - `single` (default): this process owns every shard; shard locks and runner registration
 *   live in PostgreSQL, so a second copy on the same database cannot silently run the same
 *   concerts; no network listener.
 * - `runner`: one of several runners on a shared PostgreSQL, reachable by the others at
 *   `RUNNER_HOST:RUNNER_PORT`; shards are spread over the healthy runners.
 * - `client`: serves HTTP only, sending every concert message to the runners.
 */
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as ShardId from "@effect/cluster/ShardId"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import { Cause, Config, Duration, Effect, Layer, Option, Schedule } from "effect"
import { clusterMode, positiveInteger, runnerAddress, runnerSessionName } from "../Settings.js"
import { DatabaseClaim } from "../sql/DatabaseClaim.js"
import { withSchemaLock } from "../sql/migrations.js"
import { MainDatabase } from "../sql/Organisers.js"
import { StartupFailure } from "../StartupFailure.js"

/** Where this process runs in the cluster: its mode, its runner address, the shards per group. */
export const shardingSettings = Config.all({
  mode: clusterMode,
  host: Config.map(runnerAddress, ({ host }) => host),
  port: Config.map(runnerAddress, ({ port }) => port),
  shardsPerGroup: positiveInteger("SHARDS_PER_GROUP", 300),
  // A message to an entity of this process is handed over as it is, not encoded and decoded
  // as if it crossed the network: that cost a quarter of a purchase. The tests turn it on,
  // where it catches a payload that could not cross to another runner.
  simulateRemoteSerialization: Config.boolean("CLUSTER_SIMULATE_SERIALIZATION").pipe(Config.withDefault(false))
})

/**
 * One line whenever this process gains or loses concerts' shards (start, a runner joining,
 * dying or stopping, shutdown), from a look at the shard table once a second.
 */
const ShardWatchLive = (shardsPerGroup: number) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      let held = new Set<number>()
      const look = Effect.gen(function*() {
        const now = new Set<number>()
        for (let i = 1; i <= shardsPerGroup; i++) {
          if (sharding.hasShardId(ShardId.make("default", i))) now.add(i)
        }
        const acquired = [...now].filter((i) => !held.has(i)).length
        const released = [...held].filter((i) => !now.has(i)).length
        held = now
        if (acquired > 0) {
          yield* Effect.logInfo("shards acquired").pipe(Effect.annotateLogs({ acquired, held: now.size, of: shardsPerGroup }))
        }
        if (released > 0) {
          yield* Effect.logInfo("shards released").pipe(Effect.annotateLogs({ released, held: now.size, of: shardsPerGroup }))
        }
      })
      yield* Effect.forkScoped(Effect.repeat(look, Schedule.spaced("1 second")))
    })
  )

/** How long a runner's shard locks, and its heartbeat, last without a refresh. */
export const shardLockExpiration = Duration.seconds(6)

/** A failure of a statement whose session PostgreSQL ended on request (57P01, `pg_terminate_backend`). */
const endedByAdministrator = (cause: Cause.Cause<unknown>) =>
  Option.exists(Cause.failureOption(cause), (error) => {
    const code = (error as { readonly cause?: { readonly code?: unknown } } | undefined)?.cause?.code
    return code === "57P01"
  })

/**
 * Fencing: the database sessions of a runner that stopped answering are ended. A runner's shard
 * locks are PostgreSQL advisory locks held by its session. A killed process's connection closes
 * and its locks go with it; but a runner that is frozen (stopped, swapped out, its machine
 * paused) or cut off from the network keeps its session, and the others could not take its
 * concerts until PostgreSQL noticed: hours, with the operating system's TCP keepalive. Once its
 * heartbeat is older than the locks' expiry (it is then out of every runner's ring), a runner
 * ends every session of it, the one holding its shard locks and the others with it, in the
 * organisers' databases the service made on the same server too (a transaction it left open
 * could hold rows the new owner must write). An organiser's database given by its own
 * `database_url` is out of its reach, even on the same server. If it comes back, its
 * next refresh finds its locks gone and it lets its concerts go before taking a share again.
 * Sessions are told apart by their `application_name`, which names the runner's address.
 */
const FencingLive = (self: string) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const { client: sql } = yield* MainDatabase
      const expiration = Math.ceil(Duration.toSeconds(shardLockExpiration))
      // First the runners whose heartbeat is old (from the runners' table): the server's lock
      // table is read (which takes every partition of its lock manager) only when there are some.
      const staleRunners = sql<{ address: string }>`
        SELECT address FROM cluster_runners WHERE last_heartbeat < now() - make_interval(secs => ${expiration})`
      // Of those, each one still old and holding shard locks in this database (single bigint keys
      // from 1,000,000; below are ours, and a runner starting up holds those before it has a
      // heartbeat): every session of it here is ended, and in the databases this deployment
      // made for its organisers on this server (`database_name`; not those given by URL). Only
      // those: the server may hold other deployments', with runners of the same names. A runner
      // whose row is gone is stopping (it unregisters first, then hands its shards over,
      // refreshing its locks meanwhile): it is left to finish.
      const fence = (runners: ReadonlyArray<{ readonly address: string; readonly name: string }>) =>
        sql<{ address: string; sessions: number }>`
          WITH stale AS (
            SELECT DISTINCT s.address, s.name
            FROM jsonb_to_recordset(${JSON.stringify(runners)}::jsonb) AS s(address text, name text)
            JOIN cluster_runners r
              ON r.address = s.address AND r.last_heartbeat < now() - make_interval(secs => ${expiration})
            JOIN pg_stat_activity a ON a.application_name = s.name AND a.datname = current_database()
            JOIN pg_locks l ON l.pid = a.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objsubid = 1 AND l.objid >= 1000000
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
          SELECT s.address, (count(*) FILTER (WHERE pg_terminate_backend(a.pid)))::int AS sessions
          FROM stale s JOIN pg_stat_activity a ON a.application_name = s.name
          WHERE a.datname = current_database()
             OR a.datname IN (SELECT database_name FROM organisers WHERE database_name IS NOT NULL)
          GROUP BY s.address`
      let failing = false
      const look = staleRunners.pipe(
        Effect.flatMap((rows) => {
          const others = rows.map(({ address }) => ({ address, name: runnerSessionName(address) }))
            .filter(({ name }) => name !== self)
          return others.length === 0 ? Effect.succeed([]) : fence(others)
        }),
        Effect.flatMap((fenced) => {
          failing = false
          return Effect.forEach(fenced, ({ address, sessions }) =>
            Effect.logWarning("ended the database sessions of a runner that stopped answering").pipe(
              Effect.annotateLogs({ runner: address, sessions })
            ), { discard: true })
        }),
        // Said once until it works again: without the right to end another session (a role
        // that is neither the runners' own nor has pg_signal_backend), a frozen runner's
        // concerts wait for PostgreSQL to drop its connection. Not said when the session that
        // looked was itself ended (57P01): this runner was the one fenced, back from a freeze.
        Effect.catchAllCause((cause) =>
          failing || endedByAdministrator(cause) ? Effect.void : Effect.zipRight(
            Effect.sync(() => (failing = true)),
            Effect.logWarning("could not end the sessions of runners that stopped answering", cause)
          )
        )
      )
      yield* Effect.forkScoped(Effect.repeat(look, Schedule.spaced("1 second")))
    })
  )

/**
 * The cluster's tables, made before the cluster starts and by one process at a time. Its
 * storages make them as they start; runners started together on a new database would each
 * make them at once, and all but one fail. Built here once under the schema lock, then
 * dropped: the storages the cluster starts with find them made.
 */
const ClusterTablesLive = (config: Parameters<typeof ShardingConfig.layer>[0]) =>
  Layer.effectDiscard(
    Effect.flatMap(MainDatabase, ({ url }) =>
      withSchemaLock(
        url,
        Effect.scoped(Layer.build(
          Layer.merge(SqlMessageStorage.layer, SqlRunnerStorage.layer).pipe(Layer.provide(ShardingConfig.layer(config)))
        ))
      ))
  )

export const ClusterLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const { host, mode, port, shardsPerGroup, simulateRemoteSerialization } = yield* shardingSettings
    if (mode === "single") {
      const singleConfig = { runnerAddress: Option.some(RunnerAddress.make(host, port)), shardsPerGroup, simulateRemoteSerialization }
      return ShardWatchLive(shardsPerGroup).pipe(
        Layer.provideMerge(Sharding.layer),
        Layer.provideMerge(Runners.layerNoop),
        Layer.provideMerge(SqlMessageStorage.layer),
        Layer.provide([Layer.orDie(SqlRunnerStorage.layer), RunnerHealth.layerNoop]),
        Layer.provide(ShardingConfig.layer(singleConfig)),
        Layer.provide(ClusterTablesLive(singleConfig)),
        Layer.provide(DatabaseClaim("single"))
      )
    }
    // Several runners: notice a dead one in seconds, not the default minute. A dead runner
    // leaves the ring when a health check fails (every 2 s, on one runner; a ping is retried
    // 5 times 0.5 s apart) or when its heartbeat is `shardLockExpiration` old, whichever comes
    // first. Its locks go with its database connection (or are ended: `FencingLive`). In the
    // failover test side by side, sales stopped 5.1–5.7 s after a kill -9 with checks every
    // 5 s, 4.1–6.5 s with checks every 2 s.
    const shardingConfig = {
      runnerAddress: mode === "client" ? Option.none() : Option.some(RunnerAddress.make(host, port)),
      shardsPerGroup,
      runnerHealthCheckInterval: "2 seconds",
      refreshAssignmentsInterval: "1 second",
      shardLockRefreshInterval: "2 seconds",
      shardLockExpiration,
      simulateRemoteSerialization
    } as const
    if (mode === "client") {
      return NodeClusterSocket.layer({ storage: "sql", clientOnly: true, shardingConfig }).pipe(
        Layer.provide(ClusterTablesLive(shardingConfig))
      )
    }
    return Layer.merge(ShardWatchLive(shardsPerGroup), FencingLive(runnerSessionName(`${host}:${port}`))).pipe(
      Layer.provideMerge(NodeClusterSocket.layer({ storage: "sql", shardingConfig })),
      Layer.catchAll((error) =>
        Layer.fail(
          error._tag === "SocketServerError"
            ? new StartupFailure({
              message: `the runner cannot listen on ${host}:${port} (${String(error.cause)}); ` +
                "free the port or choose another RUNNER_PORT"
            })
            : error
        )
      ),
      Layer.provide(ClusterTablesLive(shardingConfig)),
      Layer.provide(DatabaseClaim("runner"))
    )
  })
)
