import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Concert, CreateConcert, UpdateConcert } from "./Concert.js"
import {
  BadRequestBody,
  NotFoundBody,
  PayloadTooLargeBody,
  PurchaseRefusedBody,
  UnavailableBody
} from "./Errors.js"
import { PurchaseTicket, Ticket } from "./Ticket.js"
import { User } from "./User.js"

export class Health extends Schema.Class<Health>("Health")({
  status: Schema.Literal("healthy"),
  database: Schema.Literal("up")
}) {}

const health = (group: string) =>
  HttpApiEndpoint.get("health", `/${group}/health`)
    .addSuccess(Health)
    .addError(UnavailableBody)
    .annotate(OpenApi.Summary, `Health of the ${group} service (checks the database).`)

const id = HttpApiSchema.param("id", Schema.String)

const Svg = HttpApiSchema.Text({ contentType: "image/svg+xml" })

export class UsersGroup extends HttpApiGroup.make("users")
  .add(health("users"))
  .add(HttpApiEndpoint.get("list", "/users").addSuccess(Schema.Array(User)))
  .add(HttpApiEndpoint.get("get")`/users/${id}`.addSuccess(User).addError(NotFoundBody))
  .annotate(OpenApi.Title, "User")
{}

export class ConcertsGroup extends HttpApiGroup.make("concerts")
  .add(health("concerts"))
  .add(HttpApiEndpoint.get("list", "/concerts").addSuccess(Schema.Array(Concert)))
  .add(
    HttpApiEndpoint.post("create", "/concerts")
      .setPayload(CreateConcert)
      .addSuccess(Concert, { status: 201 })
      .addError(BadRequestBody)
  )
  .add(HttpApiEndpoint.get("get")`/concerts/${id}`.addSuccess(Concert).addError(NotFoundBody))
  .add(
    HttpApiEndpoint.put("update")`/concerts/${id}`
      .setPayload(UpdateConcert)
      .addSuccess(Concert)
      .addError(BadRequestBody)
      .addError(NotFoundBody)
  )
  .add(
    HttpApiEndpoint.get("seats")`/concerts/${id}/seats`
      .addSuccess(Svg)
      .addError(NotFoundBody)
      .addError(UnavailableBody)
      .annotate(OpenApi.Description, "The seating plan; 503 with Retry-After until the first plan is rendered.")
  )
  .annotate(OpenApi.Title, "Concert")
{}

export class TicketsGroup extends HttpApiGroup.make("tickets")
  .add(health("tickets"))
  .add(
    HttpApiEndpoint.get("list", "/tickets")
      .setUrlParams(Schema.Struct({
        user_id: Schema.optionalWith(Schema.String, { exact: true }),
        concert_id: Schema.optionalWith(Schema.String, { exact: true })
      }))
      .addSuccess(Schema.Array(Ticket))
      .addError(NotFoundBody)
  )
  .add(
    HttpApiEndpoint.post("purchase", "/tickets")
      .setPayload(PurchaseTicket)
      .setHeaders(Schema.Struct({
        "idempotency-key": Schema.optionalWith(Schema.String, { exact: true })
      }))
      .addSuccess(Ticket, { status: 201 })
      .addError(BadRequestBody)
      .addError(PurchaseRefusedBody)
      .addError(UnavailableBody)
      .annotate(
        OpenApi.Description,
        "Buy one ticket. 422 when sold out or cancelled. A repeat with the same Idempotency-Key returns the first ticket."
      )
  )
  .add(HttpApiEndpoint.get("get")`/tickets/${id}`.addSuccess(Ticket).addError(NotFoundBody))
  .add(
    HttpApiEndpoint.post("print")`/tickets/${id}/print`
      .addSuccess(HttpApiSchema.Accepted)
      .addError(NotFoundBody)
  )
  .add(HttpApiEndpoint.get("printed")`/tickets/${id}/print`.addSuccess(Svg).addError(NotFoundBody))
  .annotate(OpenApi.Title, "Ticket")
{}

export class Api extends HttpApi.make("TicketOverflow")
  .add(UsersGroup)
  .add(ConcertsGroup)
  .add(TicketsGroup)
  .addError(BadRequestBody)
  .addError(PayloadTooLargeBody)
  .addError(UnavailableBody)
  .prefix("/api/v1")
  .annotate(OpenApi.Title, "TicketOverflow")
  .annotate(OpenApi.Version, "1.0.0")
{}
