// The words for the API's codes: extension states, call phases, number
// types, mobile operators, area codes, module kinds.

import { t } from './i18n.js';

/** Asterisk's ExtensionStatus code -> a state name (CSS class and label key). */
export function extensionState(status) {
  if (status === undefined || status === null || status < 0) return 'unknown';
  if (status & 16) return 'hold';
  if ((status & 8) && (status & 1)) return 'inuse_ringing';
  if (status & 8) return 'ringing';
  if (status & 4) return 'unavailable';
  if (status & 2) return 'busy';
  if (status & 1) return 'inuse';
  return 'idle';
}

export const stateLabel = (state) => t(`ext.state.${state}`);

/** The state to show: the hint's, unless the calls say better (hints can lag or say nothing). */
export function shownState(hint, found) {
  if (!found) return hint;
  if (found.role === 'ringing') return hint === 'inuse_ringing' ? hint : 'ringing';
  if (['idle', 'unknown', 'unavailable', 'ringing'].includes(hint)) return 'inuse';
  return hint; // in use, busy, on hold
}

// Iranian landline area codes (without the trunk 0) and their provinces.
const AREAS = {
  11: 'mazandaran', 13: 'gilan', 17: 'golestan', 21: 'tehran', 23: 'semnan', 24: 'zanjan', 25: 'qom',
  26: 'alborz', 28: 'qazvin', 31: 'isfahan', 34: 'kerman', 35: 'yazd', 38: 'chaharmahal', 41: 'east_azarbaijan',
  44: 'west_azarbaijan', 45: 'ardabil', 51: 'razavi_khorasan', 54: 'sistan', 56: 'south_khorasan',
  58: 'north_khorasan', 61: 'khuzestan', 66: 'lorestan', 71: 'fars', 74: 'kohgiluyeh', 76: 'hormozgan',
  77: 'bushehr', 81: 'hamadan', 83: 'kermanshah', 84: 'ilam', 86: 'markazi', 87: 'kurdistan',
};

export function areaName(area, countryCode = '98') {
  if (!area || countryCode !== '98' || !AREAS[area]) return null;
  return t(`province.${AREAS[area]}`);
}

export function numberType(number) {
  if (!number) return null;
  if (number.type === 'landline' && number.city) return t('numtype.city');
  return t(`numtype.${number.type || 'unknown'}`);
}

export function carrierName(operator) {
  if (!operator) return null;
  const key = `carrier.${operator}`;
  const text = t(key);
  return text === key ? operator : text;
}

export const moduleName = (kind) => {
  const key = `module.${kind}`;
  const text = t(key);
  return text === key ? kind : text;
};
