/**
 * The whole service as one layer, short of the HTTP listener, and the one place that says
 * which parts run in which mode: the features, then the cluster, the database and tracing, in
 * that order. `main.ts` adds the Node HTTP server and launches it; tests add a test server.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Otlp from "@effect/opentelemetry/Otlp"
import { Config, Effect, Layer, Option } from "effect"
import { ClusterLive } from "./actors/Cluster.js"
import { ConcertEntityLive } from "./actors/ConcertEntity.js"
import { ConcertSales } from "./actors/ConcertSales.js"
import { SalesDeskLive } from "./actors/SalesDesk.js"
import { Ownership } from "./actors/Ownership.js"
import { HttpLive } from "./http/Server.js"
import { DatabaseLive } from "./sql/Database.js"
import { DatabaseMonitorLive } from "./sql/DatabaseMonitor.js"
import { RoutedSqlLive } from "./sql/Organisers.js"
import { clusterMode, positiveInteger } from "./Settings.js"
import { PrintQueue } from "./workers/PrintQueue.js"
import { WorkersLive } from "./workers/Workers.js"

/**
 * Spans, metrics and logs exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
 * Without an exporter nobody reads a span, so none is made: not even a no-op one (`Spans.ts`
 * and the server's own, `Server.ts`). Metrics are kept either way: `/metrics` and `/dashboard`
 * read them.
 */
export const TracingLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const endpoint = yield* Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT"))
    const serviceName = yield* Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("ticketoverflow"))
    // The standard OpenTelemetry setting for how often buffered spans are sent, in milliseconds.
    const exportInterval = yield* positiveInteger("OTEL_BSP_SCHEDULE_DELAY", 5000)
    // And how often metrics are.
    const metricsInterval = yield* positiveInteger("OTEL_METRIC_EXPORT_INTERVAL", 60000)
    return Option.match(endpoint, {
      onNone: () => Layer.setTracerEnabled(false),
      onSome: (baseUrl) =>
        Otlp.layerJson({
          baseUrl,
          resource: { serviceName },
          tracerExportInterval: exportInterval,
          metricsExportInterval: metricsInterval
        }).pipe(
          Layer.provide(NodeHttpClient.layerUndici)
        )
    })
  })
)

/**
 * What this process runs, by `CLUSTER_MODE`, given `Sharding` and `SqlClient` (and an
 * `HttpServer`): the API everywhere; the concert entities and the background work (render
 * threads, printing, seating sweeps) only where concerts run, not in a `client`.
 */
export const FeaturesLive = Layer.unwrapEffect(
  Effect.map(clusterMode, (mode) =>
    mode === "client"
      ? HttpLive.pipe(Layer.provide(PrintQueue.DatabaseOnly))
      : Layer.mergeAll(HttpLive, ConcertEntityLive, SalesDeskLive.pipe(Layer.provide([ConcertSales.Default, Ownership.Default]))).pipe(
        Layer.provide(WorkersLive)
      ))
).pipe(
  // The features work in organisers' databases through the routed client; the cluster, the
  // monitor and the directory use the main database directly.
  Layer.provide(RoutedSqlLive)
)

export const AppLive = Layer.merge(FeaturesLive, DatabaseMonitorLive).pipe(
  Layer.provide(ClusterLive),
  Layer.provide(DatabaseLive),
  Layer.provide(TracingLive)
)
