/**
 * Offload and the store drivers stay out of Next's server bundle: Node loads them as they are.
 * `serverExternalPackages` does that for packages installed in node_modules; in this repository
 * `offload` is a workspace link, which webpack bundles unless told, hence `externals` too.
 */
export default {
  serverExternalPackages: ['offload', 'better-sqlite3'],
  webpack(config, { isServer }) {
    if (isServer)
      config.externals.push(({ request }, callback) =>
        /^offload(\/|$)/.test(request ?? '') ? callback(null, `module ${request}`) : callback(),
      );
    return config;
  },
};
