import { HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Layer, Logger, LogLevel } from "effect"
import { AppLive } from "./App.js"
import { createStartingServer } from "./http/Server.js"

const ServerLive = NodeHttpServer.layerConfig(() => createStartingServer({ keepAliveTimeout: 65_000 }), {
  port: Config.port("PORT").pipe(Config.withDefault(8080)),
  host: Config.string("HOST").pipe(Config.withDefault("0.0.0.0"))
})

const LoggingLive = Layer.unwrapEffect(
  Config.all({
    format: Config.literal("logfmt", "json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("logfmt")),
    level: Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))
  }).pipe(
    Config.map(({ format, level }) =>
      Layer.merge(
        format === "json" ? Logger.json : format === "pretty" ? Logger.pretty : Logger.logFmt,
        Logger.minimumLogLevel(level)
      )
    )
  )
)

// SIGTERM and SIGINT interrupt the main fiber: the HTTP server closes, the shards are released,
// the database pool and the embedded database stop, in that order.
AppLive.pipe(
  Layer.provide(HttpServer.withLogAddress(ServerLive)),
  Layer.provide(LoggingLive),
  Layer.launch,
  (main) => NodeRuntime.runMain(main, { disablePrettyLogger: true })
)
