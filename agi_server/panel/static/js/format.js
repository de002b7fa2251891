// Numbers, phone numbers, dates and durations as people read them: Persian
// digits and the Jalali calendar (the browser's own Intl, calendar
// "persian") in the PBX's time zone; ASCII digits and the Gregorian
// calendar in English.

import { lang } from './i18n.js';

let zone = 'Asia/Tehran';
const cache = new Map();

export function setZone(name) {
  zone = name || 'Asia/Tehran';
  cache.clear();
}
export const timeZone = () => zone;

// Persian: the Jalali calendar and Persian digits; English: Gregorian.
const dateLocale = () => (lang() === 'fa' ? 'fa-IR-u-ca-persian' : 'en-GB');
const numberLocale = () => (lang() === 'fa' ? 'fa-IR' : 'en-GB');

function formatter(kind, options) {
  const key = `${lang()}|${zone}|${kind}`;
  let f = cache.get(key);
  if (!f) {
    f = kind.startsWith('n:') ? new Intl.NumberFormat(numberLocale(), options)
      : new Intl.DateTimeFormat(dateLocale(), { timeZone: zone, ...options });
    cache.set(key, f);
  }
  return f;
}

const PERSIAN = '۰۱۲۳۴۵۶۷۸۹';

/** ASCII digits of a string as Persian digits (in Persian). */
export function digits(text) {
  if (text === null || text === undefined) return '';
  const s = String(text);
  return lang() === 'fa' ? s.replace(/[0-9]/g, (d) => PERSIAN[d]) : s;
}

/** Persian or Arabic-Indic digits typed by a person, as ASCII. */
export function asciiDigits(text) {
  return String(text ?? '')
    .replace(/[۰-۹]/g, (d) => String(d.charCodeAt(0) - 0x06f0))
    .replace(/[٠-٩]/g, (d) => String(d.charCodeAt(0) - 0x0660));
}

export function num(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return formatter('n:number', { maximumFractionDigits: 1 }).format(value);
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return '–';
  return formatter('n:percent', { style: 'percent', maximumFractionDigits: 0 }).format(ratio);
}

/** A phone number or extension for reading: Persian digits, the leading + kept. */
export function phone(value) {
  if (!value) return '';
  return digits(value);
}

function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value < 1e12 ? value * 1000 : value);
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "۹ آذر ۱۴۰۵، ۱۴:۳۰" (Jalali, PBX time zone) or "9 Nov 2026, 14:30". */
export function dateTime(value) {
  const d = toDate(value);
  return d ? formatter('datetime', { dateStyle: 'medium', timeStyle: 'short' }).format(d) : '–';
}

export function date(value) {
  const d = toDate(value);
  return d ? formatter('date', { dateStyle: 'full' }).format(d) : '–';
}

export function time(value) {
  const d = toDate(value);
  return d ? formatter('time', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(d) : '–';
}

/** Today's date or just the time for a moment of today, else date and time. */
export function when(value) {
  const d = toDate(value);
  if (!d) return '–';
  const day = formatter('day', { year: 'numeric', month: 'numeric', day: 'numeric' });
  if (day.format(d) === day.format(new Date())) {
    return formatter('hm', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d);
  }
  return dateTime(d);
}

/** Seconds as m:ss or h:mm:ss, with the language's digits. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  const text = h ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
  return digits(text);
}

export function secondsSince(value, now = Date.now()) {
  const d = toDate(value);
  return d ? (now - d.getTime()) / 1000 : null;
}

/** Midnight of today (or `daysAgo` days before) in the PBX's zone, as a Date. */
export function startOfDay(daysAgo = 0, now = new Date()) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', hour: 'numeric', minute: 'numeric', second: 'numeric',
  }).formatToParts(now).filter((p) => p.type !== 'literal').map((p) => [p.type, Number(p.value)]));
  const sinceMidnight = ((parts.hour * 60 + parts.minute) * 60 + parts.second) * 1000 + now.getMilliseconds();
  return new Date(now.getTime() - sinceMidnight - daysAgo * 86400000);
}

/** A yyyy-mm-dd from <input type=date> as midnight of that day in the PBX's zone. */
export function dayStart(isoDay) {
  const [y, m, d] = isoDay.split('-').map(Number);
  const utcMidnight = Date.UTC(y, m - 1, d);
  // The zone's offset at that moment: format the UTC midnight in the zone and compare.
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
    hour: 'numeric', minute: 'numeric',
  }).formatToParts(new Date(utcMidnight)).filter((p) => p.type !== 'literal').map((p) => [p.type, Number(p.value)]));
  const asIfUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute);
  return new Date(utcMidnight - (asIfUtc - utcMidnight));
}
