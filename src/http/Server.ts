/**
 * The HTTP API: every group, the error mapping, the OpenAPI document at
 * `/api/v1/openapi.json` and browsable docs at `/docs`. Needs an `HttpServer`, `Sharding`
 * (to reach the concert entities) and `SqlClient`.
 */
import { type HttpApp, HttpApiBuilder, HttpApiSwagger, HttpServerRequest } from "@effect/platform"
import { Config, Effect, Layer, LogLevel } from "effect"
import { ConcertSales } from "../actors/ConcertSales.js"
import { Api } from "../domain/Api.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { PrintsRepo } from "../sql/PrintsRepo.js"
import { SeatingPlansRepo } from "../sql/SeatingPlansRepo.js"
import { TicketsRepo } from "../sql/TicketsRepo.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { Renderer } from "../workers/Renderer.js"
import { SeatingPlans } from "../workers/SeatingPlans.js"
import { BaseUrl } from "./BaseUrl.js"
import { ClosedSales } from "./ClosedSales.js"
import { ConcertsHttpLive } from "./ConcertsHttp.js"
import { ErrorResponsesLive } from "./ErrorResponses.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { ListPages } from "./ListPages.js"
import { TicketsHttpLive } from "./TicketsHttp.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { UsersHttpLive } from "./UsersHttp.js"

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([UsersHttpLive, ConcertsHttpLive, TicketsHttpLive])
)

/** What the handlers share: lookups, repositories, and the print pipeline with its workers. */
const ServicesLive = Layer.mergeAll(PrintQueue.Default, SeatingPlans.Default).pipe(
  Layer.provideMerge(Layer.mergeAll(PrintsRepo.Default, SeatingPlansRepo.Default, Renderer.Live, KnownConcerts.Default)),
  Layer.provideMerge(Layer.mergeAll(
    UserDirectory.Default,
    DatabaseHealth.Default,
    BaseUrl.Default,
    ClosedSales.Default,
    ListPages.Default,
    ConcertSales.Default,
    ConcertsRepo.Default,
    TicketsRepo.Default
  ))
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
  Effect.map(
    Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info)),
    (level) => LogLevel.lessThanEqual(level, LogLevel.Debug) ? HttpApiBuilder.serve(requestLog) : HttpApiBuilder.serve()
  )
)

export const HttpLive = ServeLive.pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/api/v1/openapi.json" })),
  Layer.provide(ErrorResponsesLive),
  Layer.provide(ApiLive),
  Layer.provide(ServicesLive)
)
