/**
 * The HTTP layer's own ceilings: `POST /api/v1/tickets` answered with a constant 201 ticket and
 * nothing else, on the stack the service is built on.
 *   CEILING=app: `@effect/platform`'s Node server with a plain HttpApp (reads the JSON body);
 *   CEILING=api: an HttpApi with one endpoint: the service's payload schema and Ticket encoding;
 *   CEILING=route: that HttpApi, with the purchase answered ahead of its router as the service
 *                  answers a plain one (`Purchases.route`): the body read, parsed and decoded
 *                  with the payload schema, the ticket written as JSON text.
 * Compared with raw `node:http` in the same run they show what the framework alone costs.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Either, Layer, Schema } from "effect"
import { ConcertId, TicketId, UserId } from "../src/domain/Ids.js"
import { PurchaseTicket, Ticket, TicketRecord } from "../src/domain/Ticket.js"
import { ServiceServer } from "../src/http/ServiceServer.js"

const ticket = new TicketRecord({
  id: TicketId.make("00000000-0000-4000-8000-000000000000"),
  concertId: ConcertId.make("00000000-0000-4000-8000-000000000001"),
  userId: UserId.make("00000000-0000-0000-0000-000000000001"),
  seat: 1,
  printStatus: "NOT_PRINTED"
}).toTicket("http://127.0.0.1/api/v1")

class CeilingApi extends HttpApi.make("Ceiling")
  .add(HttpApiGroup.make("tickets").add(
    HttpApiEndpoint.post("purchase", "/tickets").setPayload(PurchaseTicket).addSuccess(Ticket, { status: 201 })
  ))
  .prefix("/api/v1")
{}

const ApiLive = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(CeilingApi).pipe(
    Layer.provide(HttpApiBuilder.group(CeilingApi, "tickets", (handlers) => handlers.handle("purchase", () => Effect.succeed(ticket))))
  ))
)

const decodePurchase = Schema.decodeUnknownEither(PurchaseTicket)
const ticketText = Schema.encodeSync(Ticket)(ticket)

const RouteLive = HttpApiBuilder.serve((app) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    request.method !== "POST" || request.url !== "/api/v1/tickets" ? app : Effect.matchEffect(request.text, {
      onFailure: () => app,
      onSuccess: (text) => {
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          return app
        }
        return Either.isLeft(decodePurchase(json))
          ? app
          : Effect.succeed(HttpServerResponse.text(JSON.stringify(ticketText), { status: 201, contentType: "application/json" }))
      }
    }))
).pipe(
  Layer.provide(HttpApiBuilder.api(CeilingApi).pipe(
    Layer.provide(HttpApiBuilder.group(CeilingApi, "tickets", (handlers) => handlers.handle("purchase", () => Effect.succeed(ticket))))
  ))
)

const AppLive = HttpServer.serve(
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    yield* request.json
    return HttpServerResponse.unsafeJson(ticket, { status: 201 })
  }).pipe(Effect.orDie)
)

const ServerLive = NodeHttpServer.layerConfig(() => new ServiceServer({ keepAliveTimeout: 65_000 }), {
  port: Config.port("PORT"),
  host: Config.succeed("127.0.0.1")
})

Layer.unwrapEffect(Effect.map(Config.literal("app", "api", "route")("CEILING"), (mode) =>
  mode === "app" ? AppLive : mode === "route" ? RouteLive : ApiLive)).pipe(
  Layer.provide(ServerLive),
  Layer.provide(Layer.setTracerEnabled(false)),
  Layer.launch,
  NodeRuntime.runMain
)
