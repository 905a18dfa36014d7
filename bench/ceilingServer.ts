/**
 * The HTTP layer's own ceilings: `POST /api/v1/tickets` answered with a constant 201 ticket and
 * nothing else, on the stack the service is built on.
 *   CEILING=app: `@effect/platform`'s Node server with a plain HttpApp (reads the JSON body);
 *   CEILING=api: an HttpApi with one endpoint: the service's payload schema and Ticket encoding.
 * Compared with raw `node:http` in the same run they show what the framework alone costs.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
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

Layer.unwrapEffect(Effect.map(Config.literal("app", "api")("CEILING"), (mode) => mode === "app" ? AppLive : ApiLive)).pipe(
  Layer.provide(ServerLive),
  Layer.provide(Layer.setTracerEnabled(false)),
  Layer.launch,
  NodeRuntime.runMain
)
