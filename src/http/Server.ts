/**
 * The HTTP API: every group (each with the services it uses), the error mapping, the OpenAPI
 * document at `/api/v1/openapi.json` and browsable docs at `/docs`. Needs an `HttpServer`,
 * `Sharding` (to reach the concert entities), `SqlClient`, and a `PrintQueue` (the workers',
 * or `PrintQueue.DatabaseOnly` in a process that serves HTTP only).
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Config, Effect, FiberRef, Layer, LogLevel } from "effect"
import { Api } from "../domain/Api.js"
import { ConcertsHttpLive } from "./ConcertsHttp.js"
import { ErrorResponsesLive } from "./ErrorResponses.js"
import { DashboardHttpLive } from "./DashboardHttp.js"
import { MetricsHttpLive } from "./MetricsHttp.js"
import { OrganisersHttpLive } from "./OrganisersHttp.js"
import { CallersLive } from "./Access.js"
import { ReservationsHttpLive } from "./ReservationsHttp.js"
import { TicketsHttpLive } from "./TicketsHttp.js"
import { Purchases } from "./Purchases.js"
import { UsersHttpLive } from "./UsersHttp.js"

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([UsersHttpLive, ConcertsHttpLive, TicketsHttpLive, ReservationsHttpLive, OrganisersHttpLive])
)

/** At `LOG_LEVEL=debug` (or finer), one line per request; otherwise nothing on the hot path. */
const requestLog = (app: HttpApp.Default): HttpApp.Default =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const started = Date.now()
    return Effect.tap(app, (response) =>
      Effect.logDebug("request").pipe(
        Effect.annotateLogs({
          method: request.method,
          url: request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url,
          status: response.status,
          millis: Date.now() - started
        })
      ))
  })

const ServeLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const level = yield* Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))
    // Plain purchases are answered ahead of the API's router (`Purchases.route`).
    const purchases = yield* Purchases
    const serve = LogLevel.lessThanEqual(level, LogLevel.Debug)
      ? HttpApiBuilder.serve((app) => requestLog(purchases.route(app)))
      : HttpApiBuilder.serve(purchases.route)
    // With tracing off, no server span either: the platform's tracing middleware would still
    // parse each request's URL, redact its headers and provide a no-op span to the handler.
    const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
    return tracing ? serve : HttpMiddleware.withTracerDisabledWhen(serve, () => true)
  })
)

export const HttpLive = ServeLive.pipe(
  Layer.provide(Purchases.Default),
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(MetricsHttpLive),
  Layer.provide(DashboardHttpLive),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/api/v1/openapi.json" })),
  Layer.provide(ErrorResponsesLive),
  Layer.provide(CallersLive),
  Layer.provide(ApiLive)
)
