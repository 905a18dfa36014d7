/**
 * The HTTP API: every group, the error mapping, the OpenAPI document at
 * `/api/v1/openapi.json` and browsable docs at `/docs`. Needs an `HttpServer`, `Sharding`
 * (to reach the concert entities) and `SqlClient`.
 */
import { HttpApiBuilder, HttpApiSwagger } from "@effect/platform"
import { Layer } from "effect"
import * as http from "node:http"
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
import { Health } from "./Health.js"
import { TicketsHttpLive } from "./TicketsHttp.js"
import { UserDirectory } from "./UserDirectory.js"
import { UsersHttpLive } from "./UsersHttp.js"

const ApiLive = HttpApiBuilder.api(Api).pipe(
  Layer.provide([UsersHttpLive, ConcertsHttpLive, TicketsHttpLive])
)

/** What the handlers share: lookups, repositories, and the print pipeline with its workers. */
const ServicesLive = Layer.mergeAll(PrintQueue.Default, SeatingPlans.Default).pipe(
  Layer.provideMerge(Layer.mergeAll(PrintsRepo.Default, SeatingPlansRepo.Default, Renderer.Live)),
  Layer.provideMerge(Layer.mergeAll(
    UserDirectory.Default,
    Health.Default,
    BaseUrl.Default,
    ClosedSales.Default,
    ConcertSales.Default,
    ConcertsRepo.Default,
    TicketsRepo.Default
  ))
)

export const HttpLive = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/api/v1/openapi.json" })),
  Layer.provide(ErrorResponsesLive),
  Layer.provide(ApiLive),
  Layer.provide(ServicesLive)
)

/**
 * A Node HTTP server that answers 503 (retryable) from the moment it listens until the API's
 * handler is attached: the listener comes up before the database and the cluster, and a
 * request (a load balancer's health probe) must not hang in between.
 */
export const createStartingServer = (options: http.ServerOptions = {}): http.Server => {
  const server = http.createServer(options)
  let serving = false
  server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => {
    if (serving) return
    response.writeHead(503, { "content-type": "application/json", "retry-after": "1" })
    response.end(JSON.stringify({ error: "the service is starting" }))
  })
  server.on("newListener", (event) => {
    if (event === "request") serving = true
  })
  return server
}
