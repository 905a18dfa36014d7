import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, ConfigError, Context, Duration, Effect, Exit, Layer } from "effect"
import { AppLive } from "./App.js"
import { ServiceServer } from "./http/ServiceServer.js"
import { LoggingLive } from "./Logging.js"
import { maxBodyBytes } from "./Settings.js"
import { StartupFailure } from "./StartupFailure.js"

/** The service's own HTTP server, for the drain at shutdown. */
class RunningServer extends Context.Tag("RunningServer")<RunningServer, ServiceServer>() {}

const ServerLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const port = yield* Config.port("PORT").pipe(Config.withDefault(8080))
    const host = yield* Config.string("HOST").pipe(Config.withDefault("0.0.0.0"))
    const bodyLimit = yield* maxBodyBytes
    const server = new ServiceServer({ keepAliveTimeout: 65_000, maxBodyBytes: bodyLimit })
    return Layer.merge(
      // A deep accept queue: an on-sale opening connects thousands of buyers at once, and each
      // connection the queue (Node's default: 511) has no room for waits for its SYN to be
      // sent again, a second and more later. The kernel caps it at `net.core.somaxconn`.
      HttpServer.withLogAddress(NodeHttpServer.layer(() => server, { port, host, backlog: 65_535 })),
      Layer.succeed(RunningServer, server)
    )
  })
)

/**
 * Says "ready" once everything is up, and on SIGTERM or SIGINT drains the HTTP server before
 * anything else stops: requests in flight are answered, new ones get 503 + Retry-After. Then
 * the API, the shards, the database pool and the embedded database stop, in that order, and
 * the listener closes last.
 */
const LifecycleLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const drainTimeout = yield* Config.duration("SHUTDOWN_TIMEOUT").pipe(Config.withDefault(Duration.seconds(15)))
    const { address } = yield* HttpServer.HttpServer
    const server = yield* RunningServer
    const url = address._tag === "TcpAddress"
      ? `http://${address.hostname === "0.0.0.0" ? "localhost" : address.hostname}:${address.port}/api/v1`
      : address.path
    yield* Effect.logInfo("ready").pipe(Effect.annotateLogs({ url }))
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Effect.logInfo("stopping: answering the requests in flight").pipe(
          Effect.annotateLogs({ inFlight: server.requestsInFlight })
        )
        const unanswered = yield* Effect.promise(() => server.drain(Duration.toMillis(drainTimeout)))
        if (unanswered > 0) yield* Effect.logWarning("stopping with requests unanswered").pipe(Effect.annotateLogs({ unanswered }))
      })
    )
  })
)

const oneLine = (cause: Cause.Cause<unknown>): string | undefined => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "None") return undefined
  const error = failure.value
  if (error instanceof StartupFailure) return error.message
  if (ConfigError.isConfigError(error)) return `a setting is wrong: ${String(error)}`
  return undefined
}

LifecycleLive.pipe(
  Layer.provide(AppLive),
  Layer.provide(ServerLive),
  Layer.launch,
  // A start that fails for a known reason says so in one line and exits 1, without a trace.
  Effect.catchAllCause((cause) => {
    const reason = oneLine(cause)
    if (reason === undefined) return Effect.failCause(cause)
    return Effect.zipRight(Effect.logFatal(`could not start: ${reason}`), Effect.sync(() => (process.exitCode = 1)))
  }),
  Effect.provide(LoggingLive),
  (main) =>
    NodeRuntime.runMain(main, {
      disablePrettyLogger: true,
      teardown: (exit, onExit) =>
        onExit(Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? 1 : process.exitCode === 1 ? 1 : 0)
    })
)
