// Strings in zh-CN (the default) and English, and dates shown in Beijing time.
//
// The record keeps UTC (ISO 8601 with an offset); only the display converts, so every participant
// sees the same wall-clock time whatever their computer's time zone.

const STORE_KEY = "bidroom.lang";
export const LANGS = ["zh-CN", "en"];
const TIME_ZONE = "Asia/Shanghai";

const STRINGS = {
  "zh-CN": {
    "app.name": "不见面开标",
    "lang.switch": "English",
    "lang.switch.label": "Switch to English",
    "phase.scheduled": "待开始",
    "phase.open": "进行中",
    "phase.closed": "已结束",
    "status.connecting": "连接中",
    "status.reconnecting": "重连中",
    "status.online": "在线",
    "status.offline": "离线",
    "status.retry": "重新连接",
    "role.chair": "主持人",
    "role.bidder": "投标人",
    "role.expert": "评标专家",
    "role.supervisor": "监督人",
    "role.custodian": "密钥保管人",
    "role.public": "公众",
    "role.system": "系统",
    "me.title": "我的身份",
    "me.organisation": "单位",
    "me.venue": "会场",
    "countdown.label": "距开始",
    "countdown.due": "已到开始时间，等待主持人宣布开始",
    "countdown.unknown": "等待主持人宣布开始",
    "starts.at": "开始时间：{time}（北京时间）",
    "participants.title": "参会人员",
    "participants.title.self": "主持人与我",
    "participants.hint.self": "您只能看到主持人和自己的在线状态；其他参会人员不对您显示。",
    "participants.noChair": "主持人尚未进入会议",
    "participants.count.label": "在线人数/总人数",
    "participants.empty": "暂无人员",
    "participants.online": "在线",
    "participants.offline": "离线",
    "participants.muted": "已禁言",
    "participants.removed": "已移出",
    "participants.you": "（我）",
    "announcements.title": "主持人公告",
    "announcements.empty": "暂无公告",
    "announcements.new": "新公告：{text}",
    "messages.title": "消息",
    "messages.hint.bidder": "您的消息只发送给主持人。",
    "messages.hint.chair": "选择一位参会人员，回复其消息。",
    "messages.hint.watch": "您可查看全部消息，但不能发言。",
    "messages.empty": "暂无消息",
    "messages.to": "发送给",
    "messages.to.chair": "主持人",
    "messages.pick": "请选择参会人员",
    "messages.reply": "回复",
    "messages.placeholder": "输入消息…",
    "messages.send": "发送",
    "messages.muted": "您已被主持人禁言，暂不能发送消息。",
    "messages.closedPhase": "会议进行中时才可发送消息。",
    "messages.arrow": "{from} → {to}",
    "chair.title": "主持人操作",
    "chair.open": "开始会议",
    "chair.close": "结束会议",
    "chair.close.confirm": "确定结束会议？结束后不能再发布公告或消息。",
    "chair.announce": "发布公告",
    "chair.announce.placeholder": "公告内容…",
    "chair.mute": "禁言",
    "chair.unmute": "解除禁言",
    "chair.remove": "移出",
    "chair.remove.title": "移出 {name}",
    "chair.remove.reason": "移出原因（将记录在案）",
    "chair.action.label": "{action}：{name}",
    "dialog.ok": "确定",
    "dialog.cancel": "取消",
    "toast.sent": "已发送",
    "toast.opened": "会议已开始",
    "toast.closed": "会议已结束",
    "toast.queued": "网络中断，命令将在重连后自动发送",
    "toast.dismiss": "关闭提示",
    "fatal.title.removed": "您已被移出本会议",
    "fatal.title.unauthorized": "登录已失效",
    "fatal.title.forbidden": "无权进入本会议",
    "fatal.title.room_not_found": "会议不存在",
    "fatal.title.protocol_violation": "连接出错",
    "fatal.title.no_token": "需要登录链接",
    "fatal.title.connection_replaced": "已在别处进入",
    "fatal.title.room_tampered": "记录与审计日志不符",
    "fatal.body.room_tampered": "本会议存储的记录与审计日志不一致（可能被改动），服务器拒绝提供。请联系交易中心及监督人员。",
    "fatal.body.connection_replaced": "您在另一个窗口或设备上进入了本会议，本页面已断开。如需在此继续，请刷新本页。",
    "fatal.body.removed": "主持人已将您移出本会议，您不能再次进入。如有异议，请联系交易中心。",
    "fatal.body.unauthorized": "您的登录链接无效或已过期。请向主持人索取新的登录链接。",
    "fatal.body.forbidden": "您的身份不能进入本会议。",
    "fatal.body.room_not_found": "找不到该会议，请检查链接是否完整。",
    "fatal.body.protocol_violation": "浏览器与服务器通信出错，请刷新页面重试。",
    "fatal.body.no_token": "请先使用您的数字证书登录，再进入会议室。",
    "fatal.server": "服务器说明：{message}",
    "fatal.home": "返回首页",
    "time.beijing": "北京时间",
    "index.title": "会议列表",
    "index.intro": "本平台用于公共资源交易的不见面开标。进入会议需要主持人（交易中心）发送的登录链接；演示环境中，登录链接由 bidroom demo 命令打印。",
    "index.empty": "暂无会议",
    "index.loading": "正在加载…",
    "index.failed": "会议列表加载失败：{message}",
    "index.created": "创建于 {time}",
    "index.kind.meeting": "会议",
    "index.open": "进入（需数字证书登录）",
    "fatal.login": "使用数字证书登录",
    "login.title": "数字证书登录",
    "login.room": "登录后进入会议：{room}",
    "login.error": "登录失败：{text}（{code}）",
    "login.listSep": "、",
    "login.progress.reading": "正在读取密钥文件…",
    "login.progress.importing": "正在导入私钥（不可导出，仅保存在本浏览器）…",
    "login.progress.signing": "正在签名登录请求…",
    "login.progress.demo": "正在获取演示证书…",
    "login.progress.entering": "登录成功，正在进入会议…",
    "login.done.title": "已登录",
    "login.done.who": "已登录：{name}（{organisation}）",
    "login.done.whoAlone": "已登录：{name}",
    "login.done.roles": "角色：{roles}",
    "login.done.rooms": "前往会议列表",
    "login.demo.title": "演示登录",
    "login.demo.list": "演示人员（一键登录）",
    "login.demo.hint": "演示环境：演示证书的私钥由演示服务器提供，正式平台绝不会这样做。",
    "login.demo.one": "一键登录",
    "login.demo.as": "以{name}身份登录",
    "login.stored.title": "本浏览器中已保存的证书",
    "login.stored.hint": "私钥以不可导出的方式保存在本浏览器中，可直接用于登录。",
    "login.stored.use": "使用已保存的证书登录",
    "login.stored.forget": "删除",
    "login.stored.forget.label": "从本浏览器删除 {name} 的证书和私钥",
    "login.stored.forgotten": "已从本浏览器删除该证书和私钥。",
    "login.stored.until": "有效期至 {date}",
    "login.kind.P-256": "ECDSA P-256",
    "login.kind.RSA": "RSA",
    "login.upload.title": "选择证书文件",
    "login.upload.hint": "支持 PKCS#12（.p12 / .pfx）和 PKCS#8 私钥（.pem，可加密）。私钥文件不含证书时，请同时选择证书文件。",
    "login.keyFile": "私钥或 PKCS#12 文件",
    "login.certFile": "证书文件（私钥文件中没有证书时需要）",
    "login.password": "密码（加密的文件需要）",
    "login.submit": "登录",
    "login.privacy": "私钥只在本机使用：导入后不可导出，不会上传到服务器；服务器只收到证书和对登录挑战的签名。",
  },
  en: {
    "app.name": "Remote Bid Opening",
    "lang.switch": "中文",
    "lang.switch.label": "切换到中文",
    "phase.scheduled": "Scheduled",
    "phase.open": "In progress",
    "phase.closed": "Closed",
    "status.connecting": "Connecting",
    "status.reconnecting": "Reconnecting",
    "status.online": "Online",
    "status.offline": "Offline",
    "status.retry": "Reconnect",
    "role.chair": "Chair",
    "role.bidder": "Bidder",
    "role.expert": "Expert",
    "role.supervisor": "Supervisor",
    "role.custodian": "Key custodian",
    "role.public": "Public",
    "role.system": "System",
    "me.title": "Signed in as",
    "me.organisation": "Organisation",
    "me.venue": "Venue",
    "countdown.label": "Starts in",
    "countdown.due": "Start time reached; waiting for the chair to open",
    "countdown.unknown": "Waiting for the chair to open the meeting",
    "starts.at": "Starts at {time} (Beijing time)",
    "participants.title": "Participants",
    "participants.title.self": "The chair and you",
    "participants.hint.self": "You see only the chair's presence and your own; other participants are not shown to you.",
    "participants.noChair": "The chair has not joined yet",
    "participants.count.label": "online / all",
    "participants.empty": "Nobody yet",
    "participants.online": "Online",
    "participants.offline": "Offline",
    "participants.muted": "Muted",
    "participants.removed": "Removed",
    "participants.you": " (you)",
    "announcements.title": "Announcements",
    "announcements.empty": "No announcements yet",
    "announcements.new": "New announcement: {text}",
    "messages.title": "Messages",
    "messages.hint.bidder": "Your messages go to the chair only.",
    "messages.hint.chair": "Pick a participant to answer.",
    "messages.hint.watch": "You can read every message but not write.",
    "messages.empty": "No messages yet",
    "messages.to": "To",
    "messages.to.chair": "Chair",
    "messages.pick": "Choose a participant",
    "messages.reply": "Reply",
    "messages.placeholder": "Type a message…",
    "messages.send": "Send",
    "messages.muted": "The chair has muted you; you cannot send messages now.",
    "messages.closedPhase": "Messages can be sent while the meeting is in progress.",
    "messages.arrow": "{from} → {to}",
    "chair.title": "Chair controls",
    "chair.open": "Open meeting",
    "chair.close": "Close meeting",
    "chair.close.confirm": "Close the meeting? No announcements or messages can follow.",
    "chair.announce": "Announce",
    "chair.announce.placeholder": "Announcement text…",
    "chair.mute": "Mute",
    "chair.unmute": "Unmute",
    "chair.remove": "Remove",
    "chair.remove.title": "Remove {name}",
    "chair.remove.reason": "Reason for removal (recorded)",
    "chair.action.label": "{action}: {name}",
    "dialog.ok": "OK",
    "dialog.cancel": "Cancel",
    "toast.sent": "Sent",
    "toast.opened": "The meeting is open",
    "toast.closed": "The meeting is closed",
    "toast.queued": "Offline: the command will be sent when the connection is back",
    "toast.dismiss": "Dismiss",
    "fatal.title.removed": "You were removed from this meeting",
    "fatal.title.unauthorized": "Your sign-in is no longer valid",
    "fatal.title.forbidden": "You may not join this meeting",
    "fatal.title.room_not_found": "No such meeting",
    "fatal.title.protocol_violation": "Connection error",
    "fatal.title.no_token": "A sign-in link is needed",
    "fatal.title.connection_replaced": "Opened elsewhere",
    "fatal.title.room_tampered": "Record does not match the audit log",
    "fatal.body.room_tampered": "This meeting's stored record does not match the audit log (it may have been altered), so the server will not serve it. Contact the trading centre and the supervisors.",
    "fatal.body.connection_replaced": "You entered this meeting from another window or device, so this page was disconnected. Reload it to continue here.",
    "fatal.body.removed": "The chair removed you from this meeting; you cannot rejoin. Contact the trading centre if you object.",
    "fatal.body.unauthorized": "Your sign-in link is invalid or has expired. Ask the chair for a new one.",
    "fatal.body.forbidden": "Your role may not join this meeting.",
    "fatal.body.room_not_found": "This meeting cannot be found; check that the link is complete.",
    "fatal.body.protocol_violation": "The browser and the server could not understand each other. Reload the page.",
    "fatal.body.no_token": "Sign in with your digital certificate first, then enter the room.",
    "fatal.server": "Server says: {message}",
    "fatal.home": "Back to the start page",
    "time.beijing": "Beijing time",
    "index.title": "Meetings",
    "index.intro": "This platform runs remote bid openings for public procurement. To join a meeting you need the sign-in link the chair (trading centre) sends you; in the demo, the bidroom demo command prints one link per role.",
    "index.empty": "No meetings yet",
    "index.loading": "Loading…",
    "index.failed": "Could not load the meetings: {message}",
    "index.created": "Created {time}",
    "index.kind.meeting": "Meeting",
    "index.open": "Open (certificate sign-in needed)",
    "fatal.login": "Sign in with your certificate",
    "login.title": "Certificate sign-in",
    "login.room": "After signing in you enter the meeting {room}",
    "login.error": "Sign-in failed: {text} ({code})",
    "login.listSep": ", ",
    "login.progress.reading": "Reading the key file…",
    "login.progress.importing": "Importing the private key (non-exportable, kept in this browser only)…",
    "login.progress.signing": "Signing the sign-in challenge…",
    "login.progress.demo": "Fetching the demo certificate…",
    "login.progress.entering": "Signed in; entering the meeting…",
    "login.done.title": "Signed in",
    "login.done.who": "Signed in as {name} ({organisation})",
    "login.done.whoAlone": "Signed in as {name}",
    "login.done.roles": "Roles: {roles}",
    "login.done.rooms": "Go to the meetings",
    "login.demo.title": "Demo sign-in",
    "login.demo.list": "Demo people (one click)",
    "login.demo.hint": "Demo only: the demo server hands out the demo people's private keys; a real platform never does.",
    "login.demo.one": "Sign in as {name}",
    "login.demo.as": "Sign in as {name}",
    "login.stored.title": "Certificates stored in this browser",
    "login.stored.hint": "The private key is kept in this browser, non-exportable, ready to sign in.",
    "login.stored.use": "Use my stored certificate",
    "login.stored.forget": "Forget",
    "login.stored.forget.label": "Forget the certificate and key of {name} in this browser",
    "login.stored.forgotten": "The certificate and its key were removed from this browser.",
    "login.stored.until": "Valid until {date}",
    "login.kind.P-256": "ECDSA P-256",
    "login.kind.RSA": "RSA",
    "login.upload.title": "Choose your certificate file",
    "login.upload.hint": "PKCS#12 (.p12 / .pfx) and PKCS#8 private keys (.pem, encrypted or not). If the key file holds no certificate, choose the certificate file as well.",
    "login.keyFile": "Private key or PKCS#12 file",
    "login.certFile": "Certificate file (when the key file has none)",
    "login.password": "Password (for an encrypted file)",
    "login.submit": "Sign in",
    "login.privacy": "The private key is used on this device only: once imported it cannot be exported and is never uploaded; the server receives the certificate and a signature over its challenge.",
  },
};

/** Readable texts for the server's error codes (docs: bidroom/protocol.py, meeting.py, tokens.py). */
const ERRORS = {
  "zh-CN": {
    bad_json: "消息格式错误",
    bad_message: "消息缺少字段或类型错误",
    unknown_type: "服务器不认识该消息类型",
    frame_too_large: "内容过长",
    not_joined: "尚未进入会议",
    unknown_command: "本会议不支持该操作",
    invalid_args: "输入内容不符合要求",
    wrong_phase: "当前会议阶段不允许该操作",
    not_allowed: "您的身份无权进行该操作",
    rate_limited: "操作过于频繁，请稍后再试",
    unavailable: "服务器暂时无法记录，请稍后重试",
    muted: "您已被主持人禁言",
    no_such_participant: "该人员未进入本会议",
    already_muted: "该人员已被禁言",
    not_muted: "该人员未被禁言",
    already_removed: "该人员已被移出",
    removed: "您已被主持人移出本会议",
    token_invalid: "登录链接无效",
    token_expired: "登录已过期，请重新获取登录链接",
    token_missing: "缺少登录凭证",
    unauthorized: "未登录或登录无效",
    room_not_found: "会议不存在",
    room_tampered: "记录与审计日志不符，已拒绝提供",
    hello_timeout: "连接超时",
    closed: "连接已关闭",
    challenge_expired: "登录请求已过期，请重新登录",
    challenge_invalid: "登录请求无效，请刷新页面后重试",
    challenge_origin: "登录请求不属于本网站，请从平台网址打开登录页",
    challenge_replayed: "该登录请求已被使用过（可能是重放），请重新登录",
    signature_invalid: "签名与证书不匹配",
    cert_revoked: "证书已被吊销",
    cert_expired: "证书已过期",
    cert_not_yet_valid: "证书尚未生效",
    cert_unreadable: "证书无法读取",
    unknown_issuer: "证书不是平台认可的CA签发的",
    revocation_unknown: "无法确认证书是否已被吊销（吊销列表缺失或过期），暂不能登录",
    wrong_key_usage: "该证书不能用于签名登录",
    bad_chain_signature: "证书链签名无效",
    chain_invalid: "证书链无效",
    holder_unknown: "该证书持有人尚未在平台登记角色，请联系交易中心",
    login_failed: "登录失败",
    key_unreadable: "无法读取密钥文件",
    key_legacy_format: "不支持该私钥格式，请导出为 PKCS#8 或 PKCS#12 文件",
    unsupported_encryption: "不支持该文件的加密算法（请使用 AES-256 加密导出）",
    unsupported_key: "不支持该密钥类型（仅支持 P-256 和 RSA）",
    password_required: "该文件已加密，请输入密码",
    wrong_password: "密码错误，或文件已损坏",
    no_private_key: "文件中没有私钥",
    certificate_required: "请同时选择证书文件",
    key_mismatch: "私钥与证书不匹配",
    key_file_missing: "请选择私钥或 PKCS#12 文件",
    stored_missing: "本浏览器中已没有该证书",
    demo_unavailable: "演示登录仅在演示环境（bidroom demo）中可用",
    demo_unknown: "没有这个演示人员",
    network: "无法连接服务器，请检查网络",
    unexpected: "发生意外错误",
  },
  en: {
    bad_json: "The message was not valid JSON",
    bad_message: "A field is missing or has the wrong type",
    unknown_type: "The server does not know this kind of message",
    frame_too_large: "The text is too long",
    not_joined: "Not in the meeting yet",
    unknown_command: "This meeting has no such action",
    invalid_args: "The input does not meet the requirements",
    wrong_phase: "The meeting's current phase does not allow this",
    not_allowed: "Your role may not do this",
    rate_limited: "Too many actions; try again in a moment",
    unavailable: "The server could not record this now; try again",
    muted: "The chair has muted you",
    no_such_participant: "That person has not joined this meeting",
    already_muted: "That person is muted already",
    not_muted: "That person is not muted",
    already_removed: "That person was removed already",
    removed: "The chair removed you from this meeting",
    token_invalid: "The sign-in link is not valid",
    token_expired: "Your sign-in has expired; get a new link",
    token_missing: "No sign-in token",
    unauthorized: "Not signed in",
    room_not_found: "No such meeting",
    room_tampered: "The record does not match the audit log; not served",
    hello_timeout: "The connection timed out",
    closed: "The connection is closed",
    challenge_expired: "The sign-in challenge has expired; sign in again",
    challenge_invalid: "The sign-in challenge is not valid; reload the page and try again",
    challenge_origin: "The sign-in challenge is for another site; open the sign-in page from the platform's address",
    challenge_replayed: "This sign-in challenge was used before (a replay?); sign in again",
    signature_invalid: "The signature does not match the certificate",
    cert_revoked: "The certificate has been revoked",
    cert_expired: "The certificate has expired",
    cert_not_yet_valid: "The certificate is not valid yet",
    cert_unreadable: "The certificate cannot be read",
    unknown_issuer: "The certificate was not issued by a CA this platform recognises",
    revocation_unknown: "Whether the certificate is revoked cannot be established (revocation list missing or stale)",
    wrong_key_usage: "This certificate may not be used to sign in",
    bad_chain_signature: "A signature in the certificate chain is invalid",
    chain_invalid: "The certificate chain is invalid",
    holder_unknown: "The platform has given this certificate holder no role; contact the trading centre",
    login_failed: "Sign-in failed",
    key_unreadable: "The key file cannot be read",
    key_legacy_format: "This private key format is not supported; export it as PKCS#8 or PKCS#12",
    unsupported_encryption: "The file's encryption is not supported (export it with AES-256)",
    unsupported_key: "This kind of key is not supported (P-256 and RSA only)",
    password_required: "The file is encrypted; enter its password",
    wrong_password: "Wrong password, or the file is damaged",
    no_private_key: "The file holds no private key",
    certificate_required: "Choose the certificate file as well",
    key_mismatch: "The private key does not belong to the certificate",
    key_file_missing: "Choose a private key or PKCS#12 file",
    stored_missing: "This certificate is no longer stored in this browser",
    demo_unavailable: "Demo sign-in works in the demo (bidroom demo) only",
    demo_unknown: "There is no such demo person",
    network: "The server cannot be reached; check the network",
    unexpected: "Something unexpected went wrong",
  },
};

let current = pickLanguage();

function pickLanguage() {
  try {
    const saved = localStorage.getItem(STORE_KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    // storage may be blocked (private mode); Chinese is the default anyway
  }
  return "zh-CN";
}

export function lang() {
  return current;
}

export function setLang(next) {
  if (!LANGS.includes(next)) return;
  current = next;
  try {
    localStorage.setItem(STORE_KEY, next);
  } catch {
    // not persisted; the switch still applies to this page
  }
  document.documentElement.lang = next;
}

/**
 * Add a page's own strings (and error texts) to the tables: `{ "zh-CN": {...}, en: {...} }`.
 * Each page family keeps its strings in its own module (i18n-bids.js, i18n-opening.js).
 */
export function addStrings(strings, errors = {}) {
  for (const code of LANGS) {
    Object.assign(STRINGS[code], strings[code] || {});
    Object.assign(ERRORS[code], errors[code] || {});
  }
}

/** Translate `key`, filling {name} placeholders; an unknown key shows itself (easy to spot). */
export function t(key, params = {}) {
  const text = STRINGS[current][key] ?? STRINGS["zh-CN"][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** A person-readable text for a server error frame; unknown codes show the server's message. */
export function errorText(error) {
  const known = ERRORS[current][error?.code];
  return known || error?.message || error?.code || "?";
}

/** Fill every [data-i18n] element's text and [data-i18n-*] attributes under `root`. */
export function translatePage(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const attr of ["placeholder", "aria-label", "title"]) {
    const data = `data-i18n-${attr}`;
    for (const el of root.querySelectorAll(`[${data}]`)) el.setAttribute(attr, t(el.getAttribute(data)));
  }
}

const formatters = new Map();

function formatter(kind) {
  const key = `${current}:${kind}`;
  if (!formatters.has(key)) {
    const options = kind === "time"
      ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }
      : { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    formatters.set(key, new Intl.DateTimeFormat(current, { ...options, timeZone: TIME_ZONE }));
  }
  return formatters.get(key);
}

/** A UTC ISO instant as a Beijing date and time; "" for a missing or invalid value. */
export function formatDateTime(iso) {
  const date = new Date(iso);
  return iso && !Number.isNaN(date.getTime()) ? formatter("datetime").format(date) : "";
}

/** A UTC ISO instant as a Beijing time of day (messages within one meeting). */
export function formatTime(iso) {
  const date = new Date(iso);
  return iso && !Number.isNaN(date.getTime()) ? formatter("time").format(date) : "";
}

/** A duration in ms as "1天 02:03:04" / "1d 02:03:04". */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const clock = [Math.floor(total / 3600) % 24, Math.floor(total / 60) % 60, total % 60]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  if (!days) return clock;
  return current === "en" ? `${days}d ${clock}` : `${days}天 ${clock}`;
}

// the computer's clock (web/js/servertime.js) ------------------------------------------------

Object.assign(STRINGS["zh-CN"], {
  "clock.skew.fast": "您电脑的时钟比平台快 {amount}。本页的倒计时已按平台时间显示；请校准电脑时间，以免误判截止时间。",
  "clock.skew.slow": "您电脑的时钟比平台慢 {amount}。本页的倒计时已按平台时间显示；请校准电脑时间，以免误判截止时间。",
  "clock.skew.minutes": "{m} 分 {s} 秒",
  "clock.skew.seconds": "{s} 秒",
});

Object.assign(STRINGS.en, {
  "clock.skew.fast": "Your computer's clock is {amount} ahead of the platform's. The countdowns on this page use the platform's time; please set your computer's clock so that you do not misjudge a deadline.",
  "clock.skew.slow": "Your computer's clock is {amount} behind the platform's. The countdowns on this page use the platform's time; please set your computer's clock so that you do not misjudge a deadline.",
  "clock.skew.minutes": "{m} min {s} s",
  "clock.skew.seconds": "{s} s",
});

// receipt checking page (web/receipt.html, web/js/receipt.js) -------------------------------

Object.assign(STRINGS["zh-CN"], {
  "receipt.title": "回执核验",
  "receipt.intro": "核验平台出具的审计回执：确认某条记录确实在平台的审计日志中，且日志检查点带有可信时间戳。核验全部在本机浏览器内完成，不向服务器发送任何内容，断网也可使用。",
  "receipt.form.title": "选择回执并核验",
  "receipt.file": "回执文件（JSON）",
  "receipt.file.chosen": "已选择：{name}",
  "receipt.key": "审计日志公钥（验证公钥）",
  "receipt.key.placeholder": "例如 example.com/audit+1a2b3c4d+AU…",
  "receipt.key.fromServer": "已从本平台读取公布的公钥；如需独立核验，请与平台公告中的公钥逐字比对，或粘贴您另行获得的公钥。",
  "receipt.key.paste": "请粘贴平台公布的审计日志公钥。",
  "receipt.root": "时间戳服务根证书（PEM，可选）",
  "receipt.root.placeholder": "-----BEGIN CERTIFICATE-----",
  "receipt.root.file": "或从文件读取根证书",
  "receipt.root.hint": "提供根证书后，将核验时间戳签发机构由该根证书签发（仅支持一级：时间戳证书须由根证书直接签发）。",
  "receipt.check": "核验回执",
  "receipt.verified": "已验证",
  "receipt.failed": "验证失败",
  "receipt.summary": "第 {index} 条记录（{action}）在大小为 {size} 的审计日志中。",
  "receipt.f.index": "记录序号",
  "receipt.f.action": "操作",
  "receipt.f.time": "记录时间",
  "receipt.f.room": "会议",
  "receipt.f.actor": "操作人",
  "receipt.f.size": "日志大小",
  "receipt.f.timestamp": "时间戳",
  "receipt.zone": "（北京时间）",
  "receipt.ts.trusted": "{time}，由 {tsa} 签发（根证书：{root}）",
  "receipt.ts.untrusted": "{time}，由 {tsa} 签发（签发机构未核验）",
  "receipt.ts.none": "回执不含时间戳",
  "receipt.ts.noRoot": "未提供时间戳服务根证书：时间戳的签名与所盖数据已核验，但签发机构是否可信未核验。",
  "receipt.chain.longer": "时间戳证书由中间证书签发，需要更长的证书链；本页面暂不支持，请使用 bidroom audit check-receipt 核验。",
  "receipt.code": "错误代码：",
  "receipt.details": "技术细节",
  "receipt.offline": "提示：本页面可保存到本机后离线打开；公钥与根证书请以平台公告为准。",
});

Object.assign(STRINGS.en, {
  "receipt.title": "Check a receipt",
  "receipt.intro": "Check an audit receipt from the platform: that a record is in the platform's audit log, and that the log's checkpoint carries a trusted timestamp. Everything is checked in this browser; nothing is sent to a server, and it works offline.",
  "receipt.form.title": "Choose a receipt and check it",
  "receipt.file": "Receipt file (JSON)",
  "receipt.file.chosen": "Chosen: {name}",
  "receipt.key": "Audit log verifier key",
  "receipt.key.placeholder": "e.g. example.com/audit+1a2b3c4d+AU…",
  "receipt.key.fromServer": "Filled in from this platform. To check independently, compare it with the key the platform published, or paste a key you obtained separately.",
  "receipt.key.paste": "Paste the audit log verifier key the platform published.",
  "receipt.root": "Timestamp authority root certificate (PEM, optional)",
  "receipt.root.placeholder": "-----BEGIN CERTIFICATE-----",
  "receipt.root.file": "or read the root certificate from a file",
  "receipt.root.hint": "With a root certificate, the timestamp's issuer is checked against it (one level only: the TSA certificate must be issued by the root itself).",
  "receipt.check": "Check receipt",
  "receipt.verified": "Verified",
  "receipt.failed": "Verification failed",
  "receipt.summary": "Entry {index} ({action}) is in the audit log of size {size}.",
  "receipt.f.index": "Entry",
  "receipt.f.action": "Action",
  "receipt.f.time": "Recorded",
  "receipt.f.room": "Room",
  "receipt.f.actor": "Actor",
  "receipt.f.size": "Log size",
  "receipt.f.timestamp": "Timestamp",
  "receipt.zone": " (Beijing time)",
  "receipt.ts.trusted": "{time}, by {tsa} (root: {root})",
  "receipt.ts.untrusted": "{time}, by {tsa} (issuer not checked)",
  "receipt.ts.none": "The receipt has no timestamp",
  "receipt.ts.noRoot": "No TSA root certificate given: the timestamp's signature and imprint are checked, but not whether its issuer is trusted.",
  "receipt.chain.longer": "The TSA certificate is issued by an intermediate CA: a longer chain is needed, which this page does not support. Use bidroom audit check-receipt.",
  "receipt.code": "Error code:",
  "receipt.details": "Technical details",
  "receipt.offline": "This page can be saved and opened offline; take the key and root certificate from the platform's announcements.",
});

Object.assign(ERRORS["zh-CN"], {
  audit_receipt: "回执格式不正确（不是第 1 版或第 2 版 bidroom 回执）",
  receipt_missing: "请先选择回执文件",
  verifier_key_missing: "请填写审计日志公钥",
  audit_key_malformed: "审计日志公钥格式不正确",
  audit_note_unknown_key: "回执不属于该公钥对应的审计日志（公钥不符）",
  audit_note_malformed: "回执中的检查点格式不正确",
  audit_note_signature: "检查点签名验证失败：检查点被篡改或签名伪造",
  audit_checkpoint_malformed: "回执中的检查点内容不正确",
  audit_checkpoint_origin: "检查点属于另一个审计日志",
  audit_entry_altered: "回执中的记录已被篡改",
  audit_index_out_of_range: "记录序号超出日志范围",
  audit_hash_malformed: "包含证明中的哈希格式不正确",
  audit_inclusion_invalid: "包含证明无效：记录不在该检查点对应的日志中",
  audit_timestamp: "回执不含时间戳",
  tsa_malformed: "时间戳格式不正确",
  tsa_imprint_mismatch: "时间戳所盖的不是该检查点（数据不符）",
  tsa_bad_signature: "时间戳签名验证失败",
  tsa_untrusted: "时间戳签发机构不受所给根证书信任",
  tsa_root_unreadable: "无法读取时间戳服务根证书（PEM）",
});

Object.assign(ERRORS.en, {
  audit_receipt: "Not a valid receipt (not a version-1 or version-2 bidroom receipt)",
  receipt_missing: "Choose a receipt file first",
  verifier_key_missing: "Give the audit log verifier key",
  audit_key_malformed: "The verifier key is malformed",
  audit_note_unknown_key: "The receipt is for another log (the key does not match)",
  audit_note_malformed: "The receipt's checkpoint is malformed",
  audit_note_signature: "The checkpoint's signature does not verify: altered or forged",
  audit_checkpoint_malformed: "The receipt's checkpoint content is malformed",
  audit_checkpoint_origin: "The checkpoint is of another log",
  audit_entry_altered: "The receipt's entry was altered",
  audit_index_out_of_range: "The entry index is outside the log",
  audit_hash_malformed: "A hash in the inclusion proof is malformed",
  audit_inclusion_invalid: "The inclusion proof is invalid: the entry is not in the checkpoint's log",
  audit_timestamp: "The receipt has no timestamp",
  tsa_malformed: "The timestamp is malformed",
  tsa_imprint_mismatch: "The timestamp is over other data, not this checkpoint",
  tsa_bad_signature: "The timestamp's signature does not verify",
  tsa_untrusted: "The timestamp's issuer is not under the given root",
  tsa_root_unreadable: "Cannot read the TSA root certificate (PEM)",
});
