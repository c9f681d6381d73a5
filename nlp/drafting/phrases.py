"""The sentences around an answer, in each language the desk replies in.

A KB variant is the answer; these are the frame: greeting, an acknowledgement for an
urgent or upset sender, the follow-up line, the log quote's lead-in, the questions
for missing facts, and the closing. They are kept here, short and few, so a team that
adds a language adds one table, and so no frame sentence ever claims something the
gateway cannot know (no "we are aware", no ETA).
"""

from __future__ import annotations

from collections.abc import Mapping

FRAME: Mapping[str, Mapping[str, str]] = {
    "en": {
        "greeting": "Hi {name},",
        "greeting_anon": "Hello,",
        "urgent": "I understand this is urgent and is blocking your work; "
        "your ticket has our full attention.",
        "followup": "Thanks for following up.",
        "still": "We are still looking into this and will update this ticket as soon as we "
        "know more.",
        "investigating": "We are investigating your report.",
        "log_intro": "In the log you sent ({source}, line {line}), this is the line that matters:",
        "log_means": "What it means: {means}",
        "docs_intro": "From our documentation ({source}):",
        "missing_one": "To look into this, could you send us {fact}?",
        "missing_many": "To look into this, could you send us:",
        "closing": "Best regards,",
    },
    "es": {
        "greeting": "Hola {name}:",
        "greeting_anon": "Hola:",
        "urgent": "Entiendo que es urgente y que está bloqueando su trabajo; "
        "su ticket tiene toda nuestra atención.",
        "followup": "Gracias por su seguimiento.",
        "still": "Seguimos revisándolo y actualizaremos este ticket en cuanto sepamos más.",
        "investigating": "Estamos investigando su reporte.",
        "log_intro": "En el log que nos envió ({source}, línea {line}), esta es la línea clave:",
        "log_means": "Qué significa: {means}",
        "docs_intro": "De nuestra documentación ({source}):",
        "missing_one": "Para revisarlo, ¿podría enviarnos {fact}?",
        "missing_many": "Para revisarlo, ¿podría enviarnos:",
        "closing": "Saludos cordiales,",
    },
    "de": {
        "greeting": "Hallo {name},",
        "greeting_anon": "Hallo,",
        "urgent": "Ich verstehe, dass es dringend ist und Ihre Arbeit blockiert; "
        "Ihr Ticket hat unsere volle Aufmerksamkeit.",
        "followup": "Danke für Ihre Nachfrage.",
        "still": "Wir prüfen das weiterhin und aktualisieren dieses Ticket, sobald wir mehr "
        "wissen.",
        "investigating": "Wir untersuchen Ihre Meldung.",
        "log_intro": "In dem Log, das Sie geschickt haben ({source}, Zeile {line}), ist dies "
        "die entscheidende Zeile:",
        "log_means": "Was sie bedeutet: {means}",
        "docs_intro": "Aus unserer Dokumentation ({source}):",
        "missing_one": "Damit wir das prüfen können, schicken Sie uns bitte {fact}.",
        "missing_many": "Damit wir das prüfen können, schicken Sie uns bitte:",
        "closing": "Viele Grüße",
    },
    "fr": {
        "greeting": "Bonjour {name},",
        "greeting_anon": "Bonjour,",
        "urgent": "Je comprends que c'est urgent et que cela bloque votre travail ; "
        "votre ticket a toute notre attention.",
        "followup": "Merci pour votre relance.",
        "still": "Nous continuons d'examiner la situation et mettrons à jour ce ticket dès "
        "que nous en saurons plus.",
        "investigating": "Nous examinons votre signalement.",
        "log_intro": "Dans le journal que vous nous avez envoyé ({source}, ligne {line}), "
        "voici la ligne importante :",
        "log_means": "Ce qu'elle signifie : {means}",
        "docs_intro": "D'après notre documentation ({source}) :",
        "missing_one": "Pour examiner cela, pourriez-vous nous envoyer {fact} ?",
        "missing_many": "Pour examiner cela, pourriez-vous nous envoyer :",
        "closing": "Cordialement,",
    },
    "pt": {
        "greeting": "Olá {name},",
        "greeting_anon": "Olá,",
        "urgent": "Entendo que é urgente e que está bloqueando o seu trabalho; "
        "o seu ticket tem toda a nossa atenção.",
        "followup": "Obrigado pelo acompanhamento.",
        "still": "Continuamos analisando e atualizaremos este ticket assim que soubermos mais.",
        "investigating": "Estamos investigando o seu relato.",
        "log_intro": "No log que você enviou ({source}, linha {line}), esta é a linha que importa:",
        "log_means": "O que significa: {means}",
        "docs_intro": "Da nossa documentação ({source}):",
        "missing_one": "Para analisarmos, poderia nos enviar {fact}?",
        "missing_many": "Para analisarmos, poderia nos enviar:",
        "closing": "Atenciosamente,",
    },
}

# What to ask for when a fact in an article's `needs` is missing.
FACTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "account_id": "your account or project id (for example acct-1234)",
        "hostname": "the hostname of the affected server or endpoint",
        "ip": "the IP address involved",
        "url": "the URL you are calling",
        "email": "the e-mail address of the user concerned",
        "http_status": "the HTTP status code you receive",
        "error_code": "the exact error message or code",
        "version": "the version you are running",
        "k8s_resource": "the Kubernetes resource (for example deployment/api)",
        "cloud_region": "the region the resource runs in",
        "cve": "the CVE identifier",
        "exception": "the full error or stack trace",
        "timestamp": "when it happened (with time zone)",
        "product": "the product concerned",
        "service": "the service concerned",
    },
    "es": {
        "account_id": "su id de cuenta o proyecto (por ejemplo acct-1234)",
        "hostname": "el nombre del servidor o endpoint afectado",
        "ip": "la dirección IP implicada",
        "url": "la URL a la que llama",
        "email": "la dirección de correo del usuario afectado",
        "http_status": "el código de estado HTTP que recibe",
        "error_code": "el mensaje o código de error exacto",
        "version": "la versión que utiliza",
        "k8s_resource": "el recurso de Kubernetes (por ejemplo deployment/api)",
        "cloud_region": "la región donde se ejecuta el recurso",
        "cve": "el identificador CVE",
        "exception": "el error completo o la traza",
        "timestamp": "cuándo ocurrió (con zona horaria)",
        "product": "el producto afectado",
        "service": "el servicio afectado",
    },
    "de": {
        "account_id": "Ihre Konto- oder Projekt-ID (zum Beispiel acct-1234)",
        "hostname": "den Hostnamen des betroffenen Servers oder Endpunkts",
        "ip": "die betroffene IP-Adresse",
        "url": "die URL, die Sie aufrufen",
        "email": "die E-Mail-Adresse des betroffenen Benutzers",
        "http_status": "den HTTP-Statuscode, den Sie erhalten",
        "error_code": "die genaue Fehlermeldung oder den Fehlercode",
        "version": "die Version, die Sie verwenden",
        "k8s_resource": "die Kubernetes-Ressource (zum Beispiel deployment/api)",
        "cloud_region": "die Region, in der die Ressource läuft",
        "cve": "die CVE-Kennung",
        "exception": "den vollständigen Fehler oder Stacktrace",
        "timestamp": "wann es passiert ist (mit Zeitzone)",
        "product": "das betroffene Produkt",
        "service": "den betroffenen Dienst",
    },
    "fr": {
        "account_id": "votre identifiant de compte ou de projet (par exemple acct-1234)",
        "hostname": "le nom d'hôte du serveur ou du point d'accès concerné",
        "ip": "l'adresse IP concernée",
        "url": "l'URL que vous appelez",
        "email": "l'adresse e-mail de l'utilisateur concerné",
        "http_status": "le code de statut HTTP reçu",
        "error_code": "le message ou code d'erreur exact",
        "version": "la version que vous utilisez",
        "k8s_resource": "la ressource Kubernetes (par exemple deployment/api)",
        "cloud_region": "la région où tourne la ressource",
        "cve": "l'identifiant CVE",
        "exception": "l'erreur complète ou la trace",
        "timestamp": "quand cela s'est produit (avec le fuseau horaire)",
        "product": "le produit concerné",
        "service": "le service concerné",
    },
    "pt": {
        "account_id": "o id da sua conta ou projeto (por exemplo acct-1234)",
        "hostname": "o nome do servidor ou endpoint afetado",
        "ip": "o endereço IP envolvido",
        "url": "a URL que você está chamando",
        "email": "o e-mail do usuário envolvido",
        "http_status": "o código de status HTTP que você recebe",
        "error_code": "a mensagem ou o código de erro exato",
        "version": "a versão que você usa",
        "k8s_resource": "o recurso do Kubernetes (por exemplo deployment/api)",
        "cloud_region": "a região onde o recurso roda",
        "cve": "o identificador CVE",
        "exception": "o erro completo ou o stack trace",
        "timestamp": "quando aconteceu (com fuso horário)",
        "product": "o produto afetado",
        "service": "o serviço afetado",
    },
}


def phrase(lang: str, key: str, **values: str) -> str:
    table = FRAME.get(lang, FRAME["en"])
    return table[key].format(**values)


def fact_request(lang: str, fact: str) -> str:
    return FACTS.get(lang, FACTS["en"]).get(fact, fact.replace("_", " "))
