-- disable myPOS payment provider credentials
UPDATE payment_provider
   SET mypos_private_key_pem = NULL;
