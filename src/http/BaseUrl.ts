import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { Config, Effect, Option } from "effect"

/**
 * The base that ticket links are built on: `PUBLIC_BASE_URL` when set (behind a load
 * balancer), otherwise the scheme and host the request arrived on, plus `/api/v1`.
 */
export class BaseUrl extends Effect.Service<BaseUrl>()("BaseUrl", {
  effect: Effect.gen(function*() {
    const configured = yield* Config.option(Config.string("PUBLIC_BASE_URL"))
    const fixed = Option.map(configured, (url) => url.replace(/\/+$/, ""))
    return {
      of: (request: HttpServerRequest.HttpServerRequest): string =>
        Option.isSome(fixed) ? fixed.value : `http://${request.headers.host ?? "localhost"}/api/v1`
    } as const
  })
}) {}
