/**
 * `GET /metrics`: every metric of the process (ours in `src/Metrics.ts`, the cluster's own) in
 * Prometheus' text format, written by the OpenTelemetry SDK's Prometheus serializer from
 * `@effect/opentelemetry`'s view of Effect's metric registry. Outside the API document, as
 * `/docs` is; with an `ADMIN_TOKEN`, for the operator alone (`operatorOnly`). Also samples, once a second, what no request updates: the database pool, memory
 * and the event loop's delay.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Config, Effect, Layer, Schedule } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as Metrics from "../Metrics.js"
import { DatabasePool } from "../sql/Database.js"
import { OrganiserDatabases } from "../sql/Organisers.js"
import { operatorOnly } from "./Access.js"

/** The exposition format's content type, as Prometheus asks for it. */
export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

const inUse = Metrics.labelled(Metrics.poolConnections, { state: "in_use" })
const idle = Metrics.labelled(Metrics.poolConnections, { state: "idle" })
const rss = Metrics.labelled(Metrics.memory, { kind: "rss" })
const heapUsed = Metrics.labelled(Metrics.memory, { kind: "heap_used" })
const external = Metrics.labelled(Metrics.memory, { kind: "external" })
const delayP50 = Metrics.labelled(Metrics.eventLoopDelay, { stat: "p50" })
const delayP99 = Metrics.labelled(Metrics.eventLoopDelay, { stat: "p99" })
const delayMax = Metrics.labelled(Metrics.eventLoopDelay, { stat: "max" })

const SamplerLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const pool = yield* DatabasePool
    const organisers = yield* OrganiserDatabases
    const resolution = 10
    const delay = monitorEventLoopDelay({ resolution })
    delay.enable()
    yield* Effect.addFinalizer(() => Effect.sync(() => delay.disable()))
    const sample = Effect.sync(() => {
      const stats = pool.stats()
      inUse.unsafeUpdate(stats.inUse, [])
      idle.unsafeUpdate(stats.idle, [])
      Metrics.poolWaiting.unsafeUpdate(stats.waiting, [])
      Metrics.poolMax.unsafeUpdate(stats.max, [])
      const theirs = organisers.stats()
      Metrics.organiserConnections.unsafeUpdate(theirs.connections, [])
      Metrics.organiserConnectionsMax.unsafeUpdate(theirs.maxConnections, [])
      Metrics.organiserDatabasesOpen.unsafeUpdate(theirs.databases, [])
      const memory = process.memoryUsage()
      rss.unsafeUpdate(memory.rss, [])
      heapUsed.unsafeUpdate(memory.heapUsed, [])
      external.unsafeUpdate(memory.external, [])
      // Over the last second; the monitor starts again for the next one. It times a timer of
      // `resolution` ms: what it took beyond that is the delay.
      const beyond = (nanos: number) => Math.max(0, nanos / 1e9 - resolution / 1000)
      if (delay.count > 0) {
        delayP50.unsafeUpdate(beyond(delay.percentile(50)), [])
        delayP99.unsafeUpdate(beyond(delay.percentile(99)), [])
        delayMax.unsafeUpdate(beyond(delay.max), [])
      }
      delay.reset()
    })
    yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced("1 second")))
  })
)

const RouteLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const producer = yield* OtelMetrics.makeProducer
    // Without the OpenTelemetry scope on every series: all of them are from the one registry.
    const serializer = new PrometheusSerializer(undefined, false, undefined, false, true)
    // Every organiser's figures: the operator's alone when there is an ADMIN_TOKEN.
    const guarded = operatorOnly((yield* OrganiserDatabases).adminConfigured)
    yield* router.get(
      "/metrics",
      guarded(Effect.map(
        Effect.promise(() => producer.collect()),
        ({ resourceMetrics }) =>
          HttpServerResponse.text(serializer.serialize(resourceMetrics), { contentType: prometheusContentType })
      ))
    )
  })
).pipe(
  Layer.provide(Layer.unwrapEffect(
    Effect.map(
      Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("ticketoverflow")),
      (serviceName) => Resource.layer({ serviceName })
    )
  ))
)

export const MetricsHttpLive = Layer.merge(RouteLive, SamplerLive)
