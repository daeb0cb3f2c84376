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
export { type Gateway, type GatewayOptions, startGateway } from "./start-gateway.js";
