export { type AuthCache, type AuthCacheOptions, createAuthCache } from "./auth-cache.js";
export {
  type GatewayConfig,
  loadGatewayConfigFile,
  parseGatewayConfig,
  parseUpstreamsEnv,
  type UpstreamConfig,
  type UpstreamProtocol,
} from "./gateway-config.js";
export { defaultImagePath, loadImage } from "./load-image.js";
export { type HttpBinding, HttpRuleError, readHttpBindings } from "./rest/http-rule.js";
export { type OpenApiMethod, openApiMethodsOf, renderOpenApi } from "./rest/openapi.js";
export { servicesOf } from "./route-table.js";
export { defaults as gatewayDefaults, type Gateway, type GatewayOptions, startGateway } from "./start-gateway.js";
