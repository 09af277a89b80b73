// Routing by location.hash only: #/<screen>[/<arg>][?query].
import { useState, useEffect } from './html.js';

export function parse(hash = location.hash) {
  const h = hash.replace(/^#\/?/, '');
  const [path, qs = ''] = h.split('?');
  const [name, ...rest] = path.split('/');
  return { name: name || 'review', arg: rest.length ? decodeURIComponent(rest.join('/')) : null, query: Object.fromEntries(new URLSearchParams(qs)) };
}

export function href(path, query) {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '' && v != null)).toString() : '';
  return '#/' + path + (q ? '?' + q : '');
}

export function go(path, query) {
  location.hash = href(path, query);
}

export function useRoute() {
  const [route, setRoute] = useState(parse());
  useEffect(() => {
    const f = () => setRoute(parse());
    window.addEventListener('hashchange', f);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  return route;
}
