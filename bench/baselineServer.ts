/**
 * The baselines, behind the same HTTP stack as the service (HttpApi, the same payload schema,
 * the same error mapping, the same Ticket encoding), with the purchase done the usual ways:
 *   BASELINE=skiplocked: alf.io's algorithm, a pre-filled seat table claimed with
 *     `SELECT … FOR UPDATE SKIP LOCKED`;
 *   BASELINE=counter: an atomic `UPDATE … SET sold = sold + 1 WHERE sold < capacity` and the
 *     ticket inserted in the same statement.
 * One statement, one commit per purchase. Tables are its own (`bench_*`), created here.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Either, Layer } from "effect"
import * as crypto from "node:crypto"
import { Json, SoldOut, UnknownConcert, UnknownUser } from "../src/domain/Errors.js"
import { sent, TicketId } from "../src/domain/Ids.js"
import { PurchaseTicket, Ticket, TicketRecord } from "../src/domain/Ticket.js"
import { BaseUrl } from "../src/http/BaseUrl.js"
import { ErrorResponsesLive } from "../src/http/ErrorResponses.js"
import { ServiceServer } from "../src/http/ServiceServer.js"
import { UserDirectory } from "../src/sql/UserDirectory.js"

class BaselineApi extends HttpApi.make("Baseline")
  .add(HttpApiGroup.make("tickets").add(
    HttpApiEndpoint.post("purchase", "/tickets")
      .setPayload(PurchaseTicket)
      .addSuccess(Ticket, { status: 201 })
      .addError(Json(UnknownConcert))
      .addError(Json(UnknownUser))
      .addError(Json(SoldOut))
  ))
  .prefix("/api/v1")
{}

const TicketsLive = HttpApiBuilder.group(BaselineApi, "tickets", (handlers) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const users = yield* UserDirectory
    const baseUrl = yield* BaseUrl
    const mode = yield* Config.literal("skiplocked", "counter")("BASELINE")
    yield* sql`CREATE TABLE IF NOT EXISTS bench_concerts (id uuid PRIMARY KEY, capacity int NOT NULL, sold int NOT NULL DEFAULT 0)`
    yield* sql`CREATE TABLE IF NOT EXISTS bench_seats (concert_id uuid NOT NULL, seat_no int NOT NULL, ticket_id uuid, user_id text, PRIMARY KEY (concert_id, seat_no))`
    yield* sql`CREATE TABLE IF NOT EXISTS bench_tickets (id uuid PRIMARY KEY, concert_id uuid NOT NULL, seat_no int NOT NULL, user_id text NOT NULL, UNIQUE (concert_id, seat_no))`

    const claim = (concertId: string, ticketId: string, userId: string) =>
      mode === "skiplocked"
        ? sql<{ seat: number }>`
            WITH free AS (
              SELECT seat_no FROM bench_seats WHERE concert_id = ${concertId} AND ticket_id IS NULL
              ORDER BY seat_no LIMIT 1 FOR UPDATE SKIP LOCKED)
            UPDATE bench_seats s SET ticket_id = ${ticketId}, user_id = ${userId}
            FROM free WHERE s.concert_id = ${concertId} AND s.seat_no = free.seat_no
            RETURNING s.seat_no AS seat`
        : sql<{ seat: number }>`
            WITH counted AS (
              UPDATE bench_concerts SET sold = sold + 1 WHERE id = ${concertId} AND sold < capacity RETURNING sold)
            INSERT INTO bench_tickets (id, concert_id, seat_no, user_id)
            SELECT ${ticketId}, ${concertId}, sold, ${userId} FROM counted RETURNING seat_no AS seat`

    return handlers.handle("purchase", ({ payload, request }) =>
      Effect.gen(function*() {
        const { concert_id: concert, user_id: user } = payload
        if (Either.isLeft(user) || !users.has(user.right)) return yield* UnknownUser.of(sent(user))
        if (Either.isLeft(concert)) return yield* UnknownConcert.of(concert.left)
        const ticketId = TicketId.make(crypto.randomUUID())
        const rows = yield* Effect.orDie(claim(concert.right, ticketId, user.right))
        if (rows.length === 0) return yield* SoldOut.of()
        return new TicketRecord({
          id: ticketId,
          concertId: concert.right,
          userId: user.right,
          seat: rows[0]!.seat,
          printStatus: "NOT_PRINTED"
        }).toTicket(baseUrl.of(request))
      }))
  }))

const ServerLive = HttpApiBuilder.serve().pipe(
  Layer.provide(ErrorResponsesLive),
  Layer.provide(HttpApiBuilder.api(BaselineApi).pipe(Layer.provide(TicketsLive))),
  Layer.provide([UserDirectory.Default, BaseUrl.Default]),
  Layer.provide(Layer.unwrapEffect(Effect.map(Config.redacted("DATABASE_URL"), (url) =>
    PgClient.layer({ url, maxConnections: 20 })))),
  Layer.provide(NodeHttpServer.layerConfig(() => new ServiceServer({ keepAliveTimeout: 65_000 }), {
    port: Config.port("PORT"),
    host: Config.succeed("127.0.0.1")
  })),
  Layer.provide(Layer.setTracerEnabled(false))
)

Layer.launch(ServerLive).pipe((main) => NodeRuntime.runMain(main, { disablePrettyLogger: true }))
