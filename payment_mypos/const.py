# Part of payment_mypos. License LGPL-3.
"""Constants of the myPOS Checkout (IPC) API.

Every value below comes from ../shared/reference/mypos-checkout-api.md (the section is named in
the comment); the reference cites myPOS's documentation and official plugins. Last checked:
2026-11-24. This module holds data only: no Odoo import, so the protocol functions stay portable.
"""

# API §2: myPOS requires a User-Agent on every request.
USER_AGENT = 'Odoo/18.0 payment_mypos/1.0'

# Seconds a server-to-server call may wait for myPOS, in all (connect, then read).
REQUEST_TIMEOUT = 10
# Seconds of REQUEST_TIMEOUT the TCP connection may take.
CONNECT_TIMEOUT = 3

# API §1: one URL per environment serves the hosted page and every server-to-server call.
PRODUCTION_URL = 'https://www.mypos.com/vmp/checkout'
SANDBOX_URL = 'https://www.mypos.com/vmp/checkout-test'

# API §4.1: the version every official integration posts today.
IPC_VERSION = '1.4'

# Identifies this integration to myPOS (API §4.1, optional `Source` field).
SOURCE = 'odoo18_payment_mypos'

# API §6.1: myPOS's public sandbox store. The key and certificate files live in data/sandbox/.
SANDBOX_SID = '000000000000010'
SANDBOX_WALLET_NUMBER = '61938166610'
SANDBOX_KEY_INDEX = 1
SANDBOX_PRIVATE_KEY_FILE = 'data/sandbox/store-private-key.pem'
SANDBOX_CERTIFICATE_FILE = 'data/sandbox/mypos-public-cert.pem'

# API §7: OrderID is at most 80 characters; keep to [A-Za-z0-9_-].
ORDER_ID_MAX_LENGTH = 80

# API §4.2: documented checkout page languages; anything else falls back to English.
CHECKOUT_LANGUAGES = {'EN', 'FR', 'IT', 'DE', 'SV', 'PT', 'NL', 'EL', 'BG', 'ES'}

# API §7: currencies the official WooCommerce plugin offers (HRK dropped: obsolete since 2023).
SUPPORTED_CURRENCIES = {
    'BGN',
    'CHF',
    'CZK',
    'DKK',
    'EUR',
    'GBP',
    'HUF',
    'ISK',
    'JPY',
    'NOK',
    'PLN',
    'RON',
    'SEK',
    'USD',
}

# The payment methods enabled with the provider: cards and the brands myPOS reports (API §4.4).
DEFAULT_PAYMENT_METHOD_CODES = {'card', 'visa', 'mastercard', 'maestro'}

# API §4.4 `CardType` of IPCPurchaseNotify -> Odoo payment method code.
CARD_TYPE_MAPPING = {
    '1': 'mastercard',
    '2': 'maestro',
    '3': 'visa',
    '4': 'visa',  # Visa Electron
    '5': 'vpay',
    '6': 'jcb',
    '7': 'bancontact',
}

# API §4.2 `PaymentMethod`: 1 = card only (the provider's only Odoo payment method is `card`).
PAYMENT_METHOD_CARD = '1'

# API §4.2 `PaymentParametersRequired`: 2 = customer details optional and prefilled from Odoo.
PAYMENT_PARAMETERS_REQUIRED = '2'

# API §4.3, §4.4: the messages myPOS posts to us, by what they mean for the transaction.
NOTIFY_METHODS = {
    'done': 'IPCPurchaseNotify',
    'cancel': 'IPCPurchaseRollback',
}
RETURN_METHODS = {
    'ok': 'IPCPurchaseOK',
    'cancel': 'IPCPurchaseCancel',
}

# API §3.3a, §4.3, §4.4: the head of each form myPOS signs, in order. The values that decide
# anything are read from these places only; extra fields may follow (myPOS adds fields over time).
_FORM_HEAD = ('IPCmethod', 'SID', 'Amount', 'Currency', 'OrderID')
FORM_LAYOUTS = {
    'IPCPurchaseNotify': (*_FORM_HEAD, 'IPC_Trnref'),
    'IPCPurchaseOK': (*_FORM_HEAD, 'IPC_Trnref'),
    'IPCPurchaseRollback': _FORM_HEAD,
    'IPCPurchaseCancel': _FORM_HEAD,
    # The nested OrderStatus of a refund's status (API §4.8, §9: an assumption).
    'IPCRefund': (*_FORM_HEAD, 'IPC_Trnref'),
}
# Names that may appear in a form only at their place in the head (or last, for `Signature`).
FORM_RESERVED_NAMES = (*_FORM_HEAD, 'IPC_Trnref', 'Signature')
# API §4.5, §4.7, §4.8: the head of each server-to-server answer; `Status` anywhere after it.
ANSWER_LAYOUTS = {
    'IPCRefund': ('IPCmethod', 'IPC_Trnref', 'Amount', 'Currency'),
    'IPCGetTxnStatus': ('IPCmethod', 'OrderID'),
    'IPCGetPaymentStatus': ('IPCmethod', 'OrderID'),
}

# API §5: status codes (`Status`) with their official names.
STATUS_NAMES = {
    0: 'Success',
    1: 'E_MISSING_REQ_PARAMS',
    2: 'E_SIGNATURE_FAILED',
    3: 'E_IPC_ERROR',
    4: 'E_INVALID_SID',
    5: 'E_INVALID_PARAMS',
    6: 'E_INVALID_REFERER',
    7: 'E_PAYMENT_TRIES',
    8: 'E_TRANSACTION_AUTH_FAIL',
    9: 'E_WRONG_AMOUNT',
    10: 'E_UNSUPPORTED_CALL',
    11: 'E_INACTIVE_MANDATE_REFERENCE',
    12: 'E_INVALID_MANDATE_REFERENCE',
    13: 'E_NOT_SUFFICIENT_FUNDS',
    14: 'E_TRANSACTION_NOT_PERMITTED',
    15: 'E_EXCEEDED_LIMIT',
    16: 'E_MANDATE_ALREADY_REGISTERED',
    17: 'E_INACTIVE_ACOUNTIDENTIFIER',
    18: 'E_INVALID_ACOUNTIDENTIFIER',
    19: 'E_EXEEDED_ACCOUNT_LIMITS',
    20: 'E_DUPLICATE_TRANSMISSION',
    21: 'E_TRANSACTION_DECLINED',
    22: 'E_WRONG_EXPIRE_DATE',
    23: 'E_INVALID_SESSION',
    24: 'E_3DS_AUTHENTICATION_FAILED',
    25: 'E_STORE_RESTRICTED',
    99: 'E_UNDEFINED_ERROR',
}

# API §5 and the troubleshooting notes it cites: what each status means for a merchant, and what to
# do about it. Shown wherever a myPOS answer reaches a person.
STATUS_EXPLANATIONS = {
    0: "Success.",
    1: "A required field is missing from the request. Update the module; if it persists, report "
    "it with the transaction's log.",
    2: "myPOS refused the request's signature. The store private key or the key index does not "
    "match the certificate uploaded to myPOS: check both (use the latest key index).",
    3: "myPOS could not process the request. Most often the credentials belong to the other "
    "environment (sandbox credentials in live mode or the reverse), or the key index is wrong.",
    4: "myPOS does not know this Store ID (SID). Copy the SID from myPOS's dashboard (Online "
    "stores) or import the configuration pack again.",
    5: "A parameter was refused: often a wallet number that does not match the store, or "
    "credentials used against the wrong environment.",
    6: "The request came from a site that is not in the store's approved links. Add your "
    "website's root domain in myPOS's dashboard.",
    7: "Too many payment attempts for this order. Start a new payment.",
    8: "The card authorisation failed. The shopper can try again or use another card.",
    9: "myPOS refused the amount. Check the currency's decimals and that the amount is positive.",
    10: "myPOS does not support this call for the store.",
    11: "The mandate reference is inactive.",
    12: "The mandate reference is invalid.",
    13: "The myPOS account lacks funds for this operation (for a refund: top up the account "
    "balance, then retry).",
    14: "myPOS does not permit this transaction (for a refund: the payment may be too old, "
    "already refunded, or not refundable).",
    15: "An account or store limit was exceeded. Check the limits in myPOS's dashboard.",
    16: "The mandate is already registered.",
    17: "The account identifier is inactive.",
    18: "The account identifier is invalid.",
    19: "The account limits were exceeded.",
    20: "A payment was already made with this OrderID (duplicate). Start a new payment.",
    21: "The transaction was declined.",
    22: "The card's expiry date is wrong.",
    23: "The payment session is invalid or expired. Start a new payment.",
    24: "3-D Secure authentication failed.",
    25: "The store is restricted: the site is not approved, the store is not enabled or "
    "verified, or the currency is not enabled for it. Check the store in myPOS's dashboard.",
    99: "myPOS reported an undefined error. Retry later; contact myPOS support if it persists.",
}

# ISO 3166-1 alpha-2 (Odoo's country code) -> alpha-3 (myPOS `CustomerCountry`, API §4.2).
# Data from the ISO 3166-1 table, plus Kosovo's customary XKX.
COUNTRY_ALPHA3 = {
    'AD': 'AND',
    'AE': 'ARE',
    'AF': 'AFG',
    'AG': 'ATG',
    'AI': 'AIA',
    'AL': 'ALB',
    'AM': 'ARM',
    'AO': 'AGO',
    'AQ': 'ATA',
    'AR': 'ARG',
    'AS': 'ASM',
    'AT': 'AUT',
    'AU': 'AUS',
    'AW': 'ABW',
    'AX': 'ALA',
    'AZ': 'AZE',
    'BA': 'BIH',
    'BB': 'BRB',
    'BD': 'BGD',
    'BE': 'BEL',
    'BF': 'BFA',
    'BG': 'BGR',
    'BH': 'BHR',
    'BI': 'BDI',
    'BJ': 'BEN',
    'BL': 'BLM',
    'BM': 'BMU',
    'BN': 'BRN',
    'BO': 'BOL',
    'BQ': 'BES',
    'BR': 'BRA',
    'BS': 'BHS',
    'BT': 'BTN',
    'BV': 'BVT',
    'BW': 'BWA',
    'BY': 'BLR',
    'BZ': 'BLZ',
    'CA': 'CAN',
    'CC': 'CCK',
    'CD': 'COD',
    'CF': 'CAF',
    'CG': 'COG',
    'CH': 'CHE',
    'CI': 'CIV',
    'CK': 'COK',
    'CL': 'CHL',
    'CM': 'CMR',
    'CN': 'CHN',
    'CO': 'COL',
    'CR': 'CRI',
    'CU': 'CUB',
    'CV': 'CPV',
    'CW': 'CUW',
    'CX': 'CXR',
    'CY': 'CYP',
    'CZ': 'CZE',
    'DE': 'DEU',
    'DJ': 'DJI',
    'DK': 'DNK',
    'DM': 'DMA',
    'DO': 'DOM',
    'DZ': 'DZA',
    'EC': 'ECU',
    'EE': 'EST',
    'EG': 'EGY',
    'EH': 'ESH',
    'ER': 'ERI',
    'ES': 'ESP',
    'ET': 'ETH',
    'FI': 'FIN',
    'FJ': 'FJI',
    'FK': 'FLK',
    'FM': 'FSM',
    'FO': 'FRO',
    'FR': 'FRA',
    'GA': 'GAB',
    'GB': 'GBR',
    'GD': 'GRD',
    'GE': 'GEO',
    'GF': 'GUF',
    'GG': 'GGY',
    'GH': 'GHA',
    'GI': 'GIB',
    'GL': 'GRL',
    'GM': 'GMB',
    'GN': 'GIN',
    'GP': 'GLP',
    'GQ': 'GNQ',
    'GR': 'GRC',
    'GS': 'SGS',
    'GT': 'GTM',
    'GU': 'GUM',
    'GW': 'GNB',
    'GY': 'GUY',
    'HK': 'HKG',
    'HM': 'HMD',
    'HN': 'HND',
    'HR': 'HRV',
    'HT': 'HTI',
    'HU': 'HUN',
    'ID': 'IDN',
    'IE': 'IRL',
    'IL': 'ISR',
    'IM': 'IMN',
    'IN': 'IND',
    'IO': 'IOT',
    'IQ': 'IRQ',
    'IR': 'IRN',
    'IS': 'ISL',
    'IT': 'ITA',
    'JE': 'JEY',
    'JM': 'JAM',
    'JO': 'JOR',
    'JP': 'JPN',
    'KE': 'KEN',
    'KG': 'KGZ',
    'KH': 'KHM',
    'KI': 'KIR',
    'KM': 'COM',
    'KN': 'KNA',
    'KP': 'PRK',
    'KR': 'KOR',
    'KW': 'KWT',
    'KY': 'CYM',
    'KZ': 'KAZ',
    'LA': 'LAO',
    'LB': 'LBN',
    'LC': 'LCA',
    'LI': 'LIE',
    'LK': 'LKA',
    'LR': 'LBR',
    'LS': 'LSO',
    'LT': 'LTU',
    'LU': 'LUX',
    'LV': 'LVA',
    'LY': 'LBY',
    'MA': 'MAR',
    'MC': 'MCO',
    'MD': 'MDA',
    'ME': 'MNE',
    'MF': 'MAF',
    'MG': 'MDG',
    'MH': 'MHL',
    'MK': 'MKD',
    'ML': 'MLI',
    'MM': 'MMR',
    'MN': 'MNG',
    'MO': 'MAC',
    'MP': 'MNP',
    'MQ': 'MTQ',
    'MR': 'MRT',
    'MS': 'MSR',
    'MT': 'MLT',
    'MU': 'MUS',
    'MV': 'MDV',
    'MW': 'MWI',
    'MX': 'MEX',
    'MY': 'MYS',
    'MZ': 'MOZ',
    'NA': 'NAM',
    'NC': 'NCL',
    'NE': 'NER',
    'NF': 'NFK',
    'NG': 'NGA',
    'NI': 'NIC',
    'NL': 'NLD',
    'NO': 'NOR',
    'NP': 'NPL',
    'NR': 'NRU',
    'NU': 'NIU',
    'NZ': 'NZL',
    'OM': 'OMN',
    'PA': 'PAN',
    'PE': 'PER',
    'PF': 'PYF',
    'PG': 'PNG',
    'PH': 'PHL',
    'PK': 'PAK',
    'PL': 'POL',
    'PM': 'SPM',
    'PN': 'PCN',
    'PR': 'PRI',
    'PS': 'PSE',
    'PT': 'PRT',
    'PW': 'PLW',
    'PY': 'PRY',
    'QA': 'QAT',
    'RE': 'REU',
    'RO': 'ROU',
    'RS': 'SRB',
    'RU': 'RUS',
    'RW': 'RWA',
    'SA': 'SAU',
    'SB': 'SLB',
    'SC': 'SYC',
    'SD': 'SDN',
    'SE': 'SWE',
    'SG': 'SGP',
    'SH': 'SHN',
    'SI': 'SVN',
    'SJ': 'SJM',
    'SK': 'SVK',
    'SL': 'SLE',
    'SM': 'SMR',
    'SN': 'SEN',
    'SO': 'SOM',
    'SR': 'SUR',
    'SS': 'SSD',
    'ST': 'STP',
    'SV': 'SLV',
    'SX': 'SXM',
    'SY': 'SYR',
    'SZ': 'SWZ',
    'TC': 'TCA',
    'TD': 'TCD',
    'TF': 'ATF',
    'TG': 'TGO',
    'TH': 'THA',
    'TJ': 'TJK',
    'TK': 'TKL',
    'TL': 'TLS',
    'TM': 'TKM',
    'TN': 'TUN',
    'TO': 'TON',
    'TR': 'TUR',
    'TT': 'TTO',
    'TV': 'TUV',
    'TW': 'TWN',
    'TZ': 'TZA',
    'UA': 'UKR',
    'UG': 'UGA',
    'UM': 'UMI',
    'US': 'USA',
    'UY': 'URY',
    'UZ': 'UZB',
    'VA': 'VAT',
    'VC': 'VCT',
    'VE': 'VEN',
    'VG': 'VGB',
    'VI': 'VIR',
    'VN': 'VNM',
    'VU': 'VUT',
    'WF': 'WLF',
    'WS': 'WSM',
    'XK': 'XKX',
    'YE': 'YEM',
    'YT': 'MYT',
    'ZA': 'ZAF',
    'ZM': 'ZMB',
    'ZW': 'ZWE',
}
