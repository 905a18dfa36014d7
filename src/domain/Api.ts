import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { Concert, CreateConcert, UpdateConcert } from "./Concert.js"
import {
  Busy,
  ConcertCancelled,
  ConcertNotFound,
  DatabaseUnavailable,
  IdempotencyKeyReused,
  InvalidRequest,
  Json,
  NotSaved,
  PayloadTooLarge,
  NotEnoughSeats,
  AlreadyRegistered,
  BadSaleSettings,
  ByDraw,
  NoDraw,
  NotInLine,
  RegistrationNotFound,
  SaleLocked,
  PlanNotReady,
  QuantityOverLimit,
  ReservationNotFound,
  SaleNotOpen,
  WrongState,
  SoldOut,
  TicketNotFound,
  TicketNotPrinted,
  UnknownConcert,
  UnknownUser,
  UserNotFound,
  Unauthorized,
  NoSuchEndpoint,
  DatabaseUrlUnusable,
  OrganiserNotCreated,
  OrganiserNotFound
} from "./Errors.js"
import { CreateOrganiser, OrganiserCreated, OrganiserSummary } from "./Organiser.js"
import { ConcertId, Named, TicketId } from "./Ids.js"
import { IdempotencyKey, PurchaseTicket, Ticket } from "./Ticket.js"
import { Invoice, Reservation, ReservationId, ReserveSeats } from "./Reservation.js"
import { SaleSettings, UpdateSale } from "./Sale.js"
import { DrawAudit, Register, Registration, RegistrationId } from "./Registration.js"
import { User } from "./User.js"

export class Health extends Schema.Class<Health>("Health")({
  status: Schema.Literal("healthy"),
  database: Schema.Literal("up")
}) {}

const health = (group: string) =>
  HttpApiEndpoint.get("health", `/${group}/health`)
    .addSuccess(Health)
    .addError(Json(DatabaseUnavailable))
    .annotate(OpenApi.Summary, `Health of the ${group} service (checks the database).`)

const userId = HttpApiSchema.param("id", Schema.String)
const concertId = HttpApiSchema.param("id", Named(ConcertId))
const ticketId = HttpApiSchema.param("id", Named(TicketId))
const reservationId = HttpApiSchema.param("id", Named(ReservationId))
const registrationId = HttpApiSchema.param("rid", Named(RegistrationId))

const Svg = HttpApiSchema.Text({ contentType: "image/svg+xml" })

export class UsersGroup extends HttpApiGroup.make("users")
  .add(health("users"))
  .add(HttpApiEndpoint.get("list", "/users").addSuccess(Schema.Array(User)))
  .add(HttpApiEndpoint.get("get")`/users/${userId}`.addSuccess(User).addError(Json(UserNotFound)))
  .annotate(OpenApi.Title, "User")
{}

export class ConcertsGroup extends HttpApiGroup.make("concerts")
  .add(health("concerts"))
  .add(HttpApiEndpoint.get("list", "/concerts").addSuccess(Schema.Array(Concert)))
  .add(
    HttpApiEndpoint.post("create", "/concerts")
      .setPayload(CreateConcert)
      .addSuccess(Concert, { status: 201 })
  )
  .add(HttpApiEndpoint.get("get")`/concerts/${concertId}`.addSuccess(Concert).addError(Json(ConcertNotFound)))
  .add(
    HttpApiEndpoint.put("update")`/concerts/${concertId}`
      .setPayload(UpdateConcert)
      .addSuccess(Concert)
      .addError(Json(ConcertNotFound))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
  )
  .add(
    HttpApiEndpoint.get("seats")`/concerts/${concertId}/seats`
      .addSuccess(Svg)
      .addError(Json(ConcertNotFound))
      .addError(Json(PlanNotReady))
      .annotate(OpenApi.Description, "The seating plan; 503 with Retry-After until the first plan is rendered.")
  )
  .add(
    HttpApiEndpoint.get("sale")`/concerts/${concertId}/sale`
      .addSuccess(SaleSettings)
      .addError(Json(ConcertNotFound))
      .annotate(OpenApi.Description, "The concert's sale settings (every concert has them; defaults until changed).")
  )
  .add(
    HttpApiEndpoint.put("changeSale")`/concerts/${concertId}/sale`
      .setPayload(UpdateSale)
      .addSuccess(SaleSettings)
      .addError(Json(ConcertNotFound))
      .addError(Json(BadSaleSettings))
      .addError(Json(SaleLocked))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
  )
  .add(
    HttpApiEndpoint.post("register")`/concerts/${concertId}/registrations`
      .setPayload(Register)
      .addSuccess(Registration, { status: 201 })
      .addError(Json(UnknownUser))
      .addError(Json(ConcertNotFound))
      .addError(Json(QuantityOverLimit))
      .addError(Json(AlreadyRegistered))
      .addError(Json(NotInLine))
      .addError(Json(ConcertCancelled))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
      .annotate(
        OpenApi.Description,
        "Pre-register before a draw's opens_at; after the draw, or after a sell-out in any mode, join the waiting line at the back."
      )
  )
  .add(
    HttpApiEndpoint.get("registrations")`/concerts/${concertId}/registrations`
      .addSuccess(Schema.Array(Registration))
      .addError(Json(ConcertNotFound))
      .annotate(
        OpenApi.Description,
        "The concert's registrations, for its organiser (ONSALE.md §5): those not in the line first, in the order they came; then the line in its order, each WAITING one with its position."
      )
  )
  .add(
    HttpApiEndpoint.get("registration")`/concerts/${concertId}/registrations/${registrationId}`
      .addSuccess(Registration)
      .addError(Json(ConcertNotFound))
      .addError(Json(RegistrationNotFound))
  )
  .add(
    HttpApiEndpoint.del("withdraw")`/concerts/${concertId}/registrations/${registrationId}`
      .addSuccess(Registration)
      .addError(Json(ConcertNotFound))
      .addError(Json(RegistrationNotFound))
      .addError(Json(WrongState))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
  )
  .add(
    HttpApiEndpoint.get("draw")`/concerts/${concertId}/draw`
      .addSuccess(DrawAudit)
      .addError(Json(ConcertNotFound))
      .addError(Json(NoDraw))
      .annotate(OpenApi.Description, "The draw's audit: the commitment at once; the seed and the order once it has run (docs/DRAW.md).")
  )
  .annotate(OpenApi.Title, "Concert")
{}

export class ReservationsGroup extends HttpApiGroup.make("reservations")
  .add(
    HttpApiEndpoint.post("reserve", "/reservations")
      .setPayload(ReserveSeats)
      .setHeaders(Schema.Struct({
        "idempotency-key": Schema.optionalWith(IdempotencyKey, { exact: true })
      }))
      .addSuccess(Reservation, { status: 201 })
      .addError(Json(UnknownConcert))
      .addError(Json(UnknownUser))
      .addError(Json(QuantityOverLimit))
      .addError(Json(NotEnoughSeats))
      .addError(Json(ConcertCancelled))
      .addError(Json(SaleNotOpen))
      .addError(Json(ByDraw))
      .addError(Json(IdempotencyKeyReused))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
      .annotate(
        OpenApi.Description,
        "Hold `quantity` seats, all or nothing, for `hold_seconds`. 412 when fewer can be held now (the message says how many are left)."
      )
  )
  .add(
    HttpApiEndpoint.get("list", "/reservations")
      .setUrlParams(Schema.Struct({
        user_id: Schema.optionalWith(Schema.String, { exact: true }),
        concert_id: Schema.optionalWith(Named(ConcertId), { exact: true })
      }))
      .addSuccess(Schema.Array(Reservation))
      .addError(Json(UserNotFound))
      .addError(Json(ConcertNotFound))
  )
  .add(HttpApiEndpoint.get("get")`/reservations/${reservationId}`.addSuccess(Reservation).addError(Json(ReservationNotFound)))
  .add(
    HttpApiEndpoint.post("checkout")`/reservations/${reservationId}/checkout`
      .addSuccess(Reservation)
      .addError(Json(ReservationNotFound))
      .addError(Json(WrongState))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
      .annotate(OpenApi.Description, "Start payment: AWAITING_PAYMENT with an invoice number. 409 unless HELD.")
  )
  .add(
    HttpApiEndpoint.post("payment")`/reservations/${reservationId}/payment`
      .addSuccess(Reservation)
      .addError(Json(ReservationNotFound))
      .addError(Json(WrongState))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
      .annotate(OpenApi.Description, "The payment arrived: CONFIRMED with its tickets. A repeat returns it unchanged.")
  )
  .add(
    HttpApiEndpoint.del("cancel")`/reservations/${reservationId}`
      .addSuccess(Reservation)
      .addError(Json(ReservationNotFound))
      .addError(Json(WrongState))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
      .annotate(OpenApi.Description, "Cancel: its seats are free at once, its invoice number goes back to the pool. 409 when CONFIRMED.")
  )
  .add(
    HttpApiEndpoint.get("invoices", "/invoices")
      .setUrlParams(Schema.Struct({
        from: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()), { exact: true }),
        to: Schema.optionalWith(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()), { exact: true })
      }))
      .addSuccess(Schema.Array(Invoice))
      .annotate(OpenApi.Description, "Invoice numbers in order: the reservation holding each, or RECYCLED for a number in the pool.")
  )
  .annotate(OpenApi.Title, "Reservation")
{}

export class TicketsGroup extends HttpApiGroup.make("tickets")
  .add(health("tickets"))
  .add(
    HttpApiEndpoint.get("list", "/tickets")
      .setUrlParams(Schema.Struct({
        user_id: Schema.optionalWith(Schema.String, { exact: true }),
        concert_id: Schema.optionalWith(Named(ConcertId), { exact: true })
      }))
      .addSuccess(Schema.Array(Ticket))
      .addError(Json(UserNotFound))
      .addError(Json(ConcertNotFound))
  )
  .add(
    HttpApiEndpoint.post("purchase", "/tickets")
      .setPayload(PurchaseTicket)
      .setHeaders(Schema.Struct({
        "idempotency-key": Schema.optionalWith(IdempotencyKey, { exact: true })
      }))
      .addSuccess(Ticket, { status: 201 })
      .addError(Json(UnknownConcert))
      .addError(Json(UnknownUser))
      .addError(Json(SoldOut))
      .addError(Json(ConcertCancelled))
      .addError(Json(IdempotencyKeyReused))
      .addError(Json(SaleNotOpen))
      .addError(Json(ByDraw))
      .addError(Json(NotSaved))
      .addError(Json(Busy))
      .annotate(
        OpenApi.Description,
        "Buy one ticket. 422 when sold out or cancelled. A repeat with the same Idempotency-Key returns the first ticket."
      )
  )
  .add(HttpApiEndpoint.get("get")`/tickets/${ticketId}`.addSuccess(Ticket).addError(Json(TicketNotFound)))
  .add(
    HttpApiEndpoint.post("print")`/tickets/${ticketId}/print`
      .addSuccess(HttpApiSchema.Accepted)
      .addError(Json(TicketNotFound))
  )
  .add(
    HttpApiEndpoint.get("printed")`/tickets/${ticketId}/print`
      .addSuccess(Svg)
      .addError(Json(TicketNotFound))
      .addError(Json(TicketNotPrinted))
  )
  .annotate(OpenApi.Title, "Ticket")
{}

export class OrganisersGroup extends HttpApiGroup.make("organisers")
  .add(
    HttpApiEndpoint.post("create", "/organisers")
      .setPayload(CreateOrganiser)
      .addSuccess(OrganiserCreated, { status: 201 })
      .addError(Json(NoSuchEndpoint))
      .addError(Json(DatabaseUrlUnusable))
      .addError(Json(OrganiserNotCreated))
      .annotate(
        OpenApi.Description,
        "With `Authorization: Bearer <ADMIN_TOKEN>`: a new organiser with a database of its own. The API key is shown this once. 404 when the service has no ADMIN_TOKEN."
      )
  )
  .add(
    HttpApiEndpoint.get("list", "/organisers")
      .addSuccess(Schema.Array(OrganiserSummary))
      .addError(Json(NoSuchEndpoint))
      .annotate(OpenApi.Description, "With the ADMIN_TOKEN: every organiser, in creation order.")
  )
  .add(
    HttpApiEndpoint.post("replaceKey")`/organisers/${HttpApiSchema.param("id", Named(Schema.UUID))}/key`
      .addSuccess(OrganiserCreated)
      .addError(Json(NoSuchEndpoint))
      .addError(Json(OrganiserNotFound))
      .annotate(
        OpenApi.Description,
        "With the ADMIN_TOKEN or the organiser's own key: a new key, shown this once. The old one stops working at once here, and on every process within 10 seconds."
      )
  )
  .annotate(OpenApi.Title, "Organiser")
{}

export class Api extends HttpApi.make("TicketOverflow")
  .add(UsersGroup)
  .add(ConcertsGroup)
  .add(TicketsGroup)
  .add(ReservationsGroup)
  .add(OrganisersGroup)
  // Any endpoint: a body that does not decode or is too large (answered by ErrorResponses),
  // the database away.
  .addError(Json(InvalidRequest))
  .addError(Json(PayloadTooLarge))
  .addError(Json(DatabaseUnavailable))
  // Any endpoint: a bearer token that is no key; an organiser's action without its key.
  .addError(Json(Unauthorized))
  .prefix("/api/v1")
  .annotate(OpenApi.Title, "TicketOverflow")
  .annotate(OpenApi.Version, "1.0.0")
{}
